// The explorer: mount(root, data, host) builds every view from one explore.json document.
// host.recompute(text) → Promise<data> runs new text (server, widget); without it the page is
// an export and the text box is read-only. Views talk through one bus; no globals.
import { createBus, el } from "./dom.js";
import { createAnswers } from "./answers.js";
import { createCarry } from "./carry.js";
import { createFlow } from "./flow.js";
import { createGraph } from "./graph.js";
import { createInspector } from "./inspector.js";
import { createLegend } from "./legend.js";
import { createMemory } from "./memory.js";
import { createNeurons } from "./neurons.js";
import { createParams } from "./params.js";
import { createStepper } from "./stepper.js";
import { unpack } from "./tensor.js";
import { createWeights } from "./weights.js";

function buildModel(data, host) {
  const doc = unpack(data);
  const D = doc.dissection;
  const nodes = new Map(D.nodes.map((n) => [n.id, n]));
  const children = new Map();
  for (const n of D.nodes)
    for (const p of new Set(n.parents)) {
      if (!children.has(p)) children.set(p, []);
      children.get(p).push(n);
    }
  return {
    data: doc, doc: D, layout: doc.layout, nodes, children, palette: doc.palette,
    decades: doc.decades, vocab: D.config.vocab, parts: D.parts || null,
    autoExpand: D.config.steps > 1,
    // a watched module's part is one layer-direction of it, recorded as the graph's row 0
    layerName: D.config.module === undefined ? (k) => `layer ${k}` : () => `layer ${D.config.layer} ${D.config.direction}`,
    fetchNode: host && host.node ? (id) => host.node(doc.text, id) : null,
  };
}

// The server's own checks (reports/explore.py check_text), made before sending: a text the
// model cannot take gets its one-line reason here, without a failed request.
function precheck(text, model) {
  const src = model.data.source;
  if ([...text].length < 2) return "type at least two characters: one input and one target to predict";
  if ([...text].length > src.max_chars)
    return `the text has ${[...text].length} characters; the explorer takes at most ${src.max_chars} (T ≤ ${src.max_chars - 1} steps): shorten it`;
  if (src.kind === "checkpoint") {
    const vocab = new Set(model.vocab);
    const missing = [...new Set([...text].filter((c) => !vocab.has(c)))].sort();
    if (missing.length)
      return `${missing.length} character(s) are not in the model's vocabulary (${JSON.stringify(missing.join("").slice(0, 20))}); type only characters it was trained on`;
  }
  return null;
}

// What the loss is, from the data: a watched module's replay says (its surrogate Σ⟨g, h⟩);
// a char model's is the mean cross-entropy of its predictions.
function lossMeaning(D) {
  const c = D.config;
  if (typeof c.loss === "string" && c.loss) return `loss = ${c.loss}`;
  return "mean cross-entropy over the T predictions";
}

// What the model reads: a char model its vocabulary's characters, a watched module vectors of
// input_size floats (it has no vocabulary; the field is left out if neither is known).
function summary(D) {
  const c = D.config;
  const vocab = c.vocab || [];
  const reads = vocab.length ? `vocabulary ${vocab.length}` : Number.isInteger(c.input_size) ? `input ${c.input_size}` : "";
  const layers = `${c.num_layers} layer${c.num_layers > 1 ? "s" : ""}`;
  const proj = c.proj_size ? `P ${c.proj_size}` : ""; // nn.LSTM(proj_size): h has P features
  return [c.cell.toUpperCase(), `H ${c.hidden_size}`, proj, layers, reads, `T ${c.steps}`, "float64"].filter(Boolean).join(" · ");
}

function header(model, host, text, onRun) {
  const D = model.doc;
  // no characters (a watched module's float inputs): each step's position in its sequence
  const c = D.config;
  const positions = !text && !(c.vocab || []).length && Array.isArray(c.positions) ? c.positions : null;
  const canRun = !!(host && host.recompute) && !positions;
  const input = el("input", {
    type: "text", "data-testid": "text-input", value: text, spellcheck: "false", autocomplete: "off",
    maxlength: model.data.source.max_chars, "aria-label": "text to dissect",
    readonly: !canRun, title: canRun ? "type a text and press Enter" : "an exported page: run rnn-dissect explore to dissect new text",
  });
  const status = el("span", { class: "status", "data-testid": "status", role: "status" },
    canRun ? "Enter runs it" : positions ? "a saved dissection (read-only)" : "exported page (read-only)");
  if (positions) {
    input.value = positions.map((p) => `pos ${p}`).join(" · ");
    input.title = "the steps' positions in the sequence: this module's inputs are vectors, not characters";
  }
  const form = el("form", { class: "textform", onsubmit: (e) => { e.preventDefault(); if (canRun) onRun(input.value, status); } },
    el("label", { class: "lab" }, positions ? "steps" : "text"), input,
    canRun ? el("button", { type: "submit", "data-testid": "run" }, "dissect") : "");
  const loss = el("b", { "data-testid": "loss", title: String(D.loss), "data-value": String(D.loss) }, Number(D.loss).toPrecision(8));
  const src = model.data.source;
  return {
    root: el("header", { class: "rde-top" },
      el("div", { class: "brand" }, "rnn-dissect ", el("span", {}, "explorer")),
      form, status,
      el("div", { class: "summary", "data-testid": "summary", title: src.label || "" }, summary(D)),
      // which weights: on the page, not only on hover, so a screenshot or an exported page
      // shown to readers says it ("fresh weights, seed 0" is untrained; else the checkpoint)
      src.label ? el("div", { class: "source", "data-testid": "source" }, src.label) : "",
      el("div", { class: "lossbox", "data-testid": "loss-box", title: lossMeaning(D) }, "loss ", loss)),
    input, status,
  };
}

export function mount(root, data, host = {}) {
  let current = data;
  function build(d, focus) {
    const model = buildModel(d, host);
    const bus = createBus();
    const graph = createGraph(model, bus);
    const params = createParams(model, bus);
    const inspector = createInspector(model, bus);
    const stepper = createStepper(model.doc.frames || [], model.nodes, bus, model.layerName);
    const panels = [
      { key: "q1", label: "1 · how gradients flow back", view: createFlow(model, bus) },
      { key: "q2", label: "2 · how the weights update", view: createWeights(model, bus) },
      { key: "q3", label: "3 · what forward keeps", view: createMemory(model, bus) },
      { key: "q4", label: "4 · what backward carries", view: createCarry(model, bus) },
    ];
    if (model.data.neurons) panels.push({ key: "neurons", label: "neurons", view: createNeurons(model, bus) });
    const answers = createAnswers(panels, bus);
    const top = header(model, host, model.data.text, (text, status) => {
      const bad = precheck(text, model);
      if (bad) {
        status.textContent = bad;
        status.className = "status error";
      } else run(text, status);
    });
    bus.on("select", (id) => {
      graph.select(id);
      params.mark("is-selected", id ? [id] : []);
    });
    bus.on("frame", (f) => {
      graph.showFrame(f);
      params.mark("is-param", f ? f.params : []);
    });
    bus.on("highlight", (cls, ids, edges) => {
      graph.highlight(cls, ids, edges);
      params.mark(cls, ids);
    });
    bus.on("goto-frame", (i) => stepper.go(i));
    const list = model.data.notes || [];
    const notes = list.length
      ? el("details", { class: "notes", "data-testid": "notes" },
          el("summary", {}, `${list.length} note${list.length > 1 ? "s" : ""} on what this page leaves out at this size`),
          ...list.map((n) => el("p", { class: "note" }, n)))
      : "";
    const app = el("div", { class: host.embedded ? "rde embedded" : "rde", tabindex: -1 },
      top.root,
      el("div", { class: "rde-main" },
        el("div", { class: "rde-left" },
          el("div", { class: "rde-stage" }, params.root, el("div", { class: "rde-canvas" }, graph.tools, graph.svg)),
          createLegend(model), stepper.root, notes, answers.root),
        inspector.root));
    root.replaceChildren(app);
    graph.render();
    graph.fit();
    requestAnimationFrame(() => graph.fit());
    const onKey = (e) => {
      const tag = (e.target && e.target.tagName) || "";
      if (/INPUT|TEXTAREA|SELECT/.test(tag) || e.ctrlKey || e.metaKey || e.altKey) return;
      let done = stepper.key(e);
      if (!done) {
        done = true;
        if (e.key === "+" || e.key === "=") graph.zoomBy(1.25);
        else if (e.key === "-") graph.zoomBy(0.8);
        else if (e.key === "0") graph.fit(true);
        else if (e.key === "Escape") bus.emit("select", null);
        else done = false;
      }
      if (done) e.preventDefault();
    };
    (host.keyTarget === "root" ? app : document).addEventListener("keydown", onKey);
    if (focus) {
      top.input.focus();
      top.input.setSelectionRange(top.input.value.length, top.input.value.length);
    }
    return () => (host.keyTarget === "root" ? app : document).removeEventListener("keydown", onKey);
  }
  let teardown = build(current, false);

  function run(text, status) {
    status.textContent = "dissecting…";
    status.className = "status busy";
    const t0 = performance.now();
    host.recompute(text).then(
      (d) => {
        current = d;
        teardown();
        teardown = build(current, true);
        const s = root.querySelector('[data-testid="status"]');
        if (s) s.textContent = `dissected in ${Math.round(performance.now() - t0)} ms`;
      },
      (err) => {
        status.textContent = String((err && err.message) || err);
        status.className = "status error";
      },
    );
  }
  return { update(d) { current = d; teardown(); teardown = build(current, false); } };
}
