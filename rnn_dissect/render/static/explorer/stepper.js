// Step-through: forward t = 1..T, then backward t = T..1 (the frames of bptt/frames.py).
// Buttons, ← / → and space (play / pause). Frame 0 is the overview: nothing lit.
import { el } from "./dom.js";

function names(ids, nodes, max = 4) {
  const out = ids.map((id) => {
    const n = nodes.get(id);
    if (!n) return id;
    return n.t !== null && n.t !== undefined ? `${n.name}@t${n.t}` : n.name;
  });
  if (!out.length) return "nothing";
  if (out.length > max) return `${out.length} nodes (${out[0]} … ${out[out.length - 1]})`;
  return out.join(", ");
}

// rnn.weight_ih_l0, rnn.weight_hh_l0 … → "W_ih, W_hh, b_ih, b_hh (layer 0)"
function weights(ids) {
  const short = ids.map((id) => id.replace(/^rnn\./, "").replace("weight_", "W_").replace("bias_", "b_"));
  const layer = ids.map((id) => id.match(/_l(\d+)$/)).filter(Boolean).map((m) => m[1]);
  const same = layer.length === ids.length && layer.every((k) => k === layer[0]);
  return same ? `${short.map((s) => s.replace(/_l\d+$/, "")).join(", ")} (layer ${layer[0]})` : short.join(", ");
}

// One sentence: what this frame does (the frame's own data, nothing made up).
// layerName: a row's name (a watched module's part names its module's layer and direction).
const byIndex = (k) => `layer ${k}`;

export function caption(f, nodes, layerName = byIndex) {
  const where = f.t === null ? "the total loss" : `step t = ${f.t}` + (f.part === "cell" ? `, ${layerName(f.layer)}` : f.part === "head" ? ", the head (output and loss)" : "");
  if (f.phase === "forward") {
    return `Forward at ${where}: computes ${names(f.computed, nodes)} from ${names(f.reads, nodes)}` +
      (f.params.length ? ` and the shared weights ${weights(f.params)}` : "") +
      `; keeps ${f.cache.length} tensor(s) for backward; passes on ${names(f.carries, nodes)}.`;
  }
  return `Backward at ${where}: gradient arrives at ${names(f.reads, nodes)}; computes the gradients of ${names(f.computed, nodes)}, reading the forward cache back` +
    (f.params.length ? `, and adds this step's term to the gradients of ${weights(f.params)}` : "") +
    `; sends gradient on to ${names(f.carries, nodes)}.` +
    (f.cut ? " A truncation cut: what reaches the detached state goes no further." : "");
}

export function title(f, layerName = byIndex) {
  if (!f) return "Overview";
  const dir = f.phase === "forward" ? "Forward" : "Backward";
  if (f.t === null) return `${dir} · total loss`;
  return `${dir} · t = ${f.t}` + (f.part === "cell" ? ` · ${layerName(f.layer)}` : " · head");
}

export function createStepper(frames, nodes, bus, layerName = byIndex) {
  const N = frames.length;
  let i = 0; // 0 = overview, k = frames[k - 1]
  let timer = null;
  const count = el("span", { class: "count", "data-testid": "frame" });
  const head = el("b", { class: "frame-title" });
  const text = el("span", { class: "frame-caption" });
  const prev = el("button", { type: "button", "data-testid": "step-prev", title: "previous frame (←)", onclick: () => go(i - 1) }, "◀");
  const next = el("button", { type: "button", "data-testid": "step-next", title: "next frame (→)", onclick: () => go(i + 1) }, "▶");
  const play = el("button", { type: "button", "data-testid": "step-play", title: "play / pause (space)", onclick: () => toggle() }, "play");
  const first = el("button", { type: "button", title: "overview (Home)", onclick: () => go(0) }, "◀◀");
  const last = el("button", { type: "button", title: "last frame (End)", onclick: () => go(N) }, "▶▶");
  const phase = el("span", { class: "phase-chip" });
  const root = el("div", { class: "rde-stepper" },
    el("div", { class: "nav" }, first, prev, play, next, last, count, phase),
    el("div", { class: "what" }, head, " ", text));

  function render() {
    const f = i ? frames[i - 1] : null;
    count.textContent = `frame ${i} / ${N}`;
    head.textContent = title(f, layerName);
    phase.textContent = f ? f.phase : "";
    phase.className = `phase-chip ${f ? f.phase : ""}`;
    text.textContent = f
      ? caption(f, nodes, layerName)
      : N
        ? `Press → (or ▶) to watch the forward pass compute t = 1..T, then the backward pass carry the gradient back from T to 1. ${N} frames.`
        : "No step-through frames at this size.";
    prev.disabled = i === 0;
    next.disabled = i === N;
    bus.emit("frame", f, i);
  }
  function go(k) {
    const j = Math.max(0, Math.min(N, k));
    if (j === i && k !== i) return stop();
    i = j;
    render();
  }
  function stop() {
    if (timer) clearInterval(timer);
    timer = null;
    play.textContent = "play";
  }
  function toggle() {
    if (timer) return stop();
    if (i === N) i = 0;
    play.textContent = "pause";
    timer = setInterval(() => (i >= N ? stop() : go(i + 1)), 1100);
  }
  render();
  return {
    root,
    go,
    index: () => i,
    key(e) {
      if (e.key === "ArrowRight") go(i + 1);
      else if (e.key === "ArrowLeft") go(i - 1);
      else if (e.key === " ") toggle();
      else if (e.key === "Home") go(0);
      else if (e.key === "End") go(N);
      else return false;
      return true;
    },
    stop,
  };
}
