// Answer 2 — how the shared weights are updated through time: every step adds its own term
// to each weight's gradient (dW = Σ_t dW^(t)); the heat table shows each term's norm (hover a
// cell: that step lights up on the graph), then the update ΔW the optimizer takes.
import { el } from "./dom.js";
import { fitRange, greyLegend, heatmap } from "./charts.js";
import { fmt, norm, tensor } from "./tensor.js";

export function createWeights(model, bus) {
  const D = model.doc;
  const T = D.config.steps;
  const W = D.weights;
  const names = Object.keys(W.step_norms);
  const norms = names.map((n) => tensor(W.step_norms[n]));
  // greys fitted to the terms shown (a fixed span drew a short text's terms all near black)
  const [lo, hi, clamped] = fitRange(norms.flatMap((t) => Array.from(t.data)), 6);
  const readout = el("div", { class: "readout", "data-testid": "weights-readout" }, "Hover a cell: that step's term of that weight's gradient, and the step on the graph.");
  const cellW = Math.max(5, Math.min(22, Math.floor(560 / Math.max(T, 1))));
  const table = heatmap({
    rows: names.length, cols: T, value: (r, c) => norms[r].data[c], fit: [lo, hi], cell: [cellW, 18], testid: "weights-terms", left: 92,
    rowLabel: (r) => names[r].replace("rnn.", "").replace("weight_", "W_").replace("bias_", "b_"),
    colLabel: (c) => String(c + 1),
    onHover: (r, c) => {
      const name = names[r];
      const t = c + 1;
      readout.textContent = `d${name}^(t=${t}): ‖·‖ = ${fmt(norms[r].data[c], 5)} — one of ${T} terms whose sum is d${name} (‖·‖ = ${fmt(norm(tensor(D.grads[name])), 5)}).`;
      const ids = [...model.nodes.values()].filter((n) => n.t === t && n.parents.includes(name)).map((n) => n.id);
      bus.emit("highlight", "is-step", ids, false);
      bus.emit("highlight", "is-param", [name], false);
    },
    onLeave: () => { bus.emit("highlight", "is-step", [], false); bus.emit("highlight", "is-param", [], false); },
  });
  const up = W.update || {};
  const rows = names.map((n) => el("tr", { "data-ref": n },
    el("td", {}, n), el("td", {}, fmt(norm(tensor(D.grads[n])), 5)),
    el("td", {}, up.delta && up.delta[n] ? fmt(norm(tensor(up.delta[n])), 5) : "—")));
  const clip = up.clip ? `, clipped to ‖g‖ ≤ ${fmt(up.clip, 4)} (×${fmt(up.clip_coef, 4)})` : "";
  return {
    root: el("div", { class: "panel-body weights" },
      el("p", {}, `Every step reads the same weights, so each weight's gradient is a sum of ${T} per-step terms; a step's term is what reached the weight through that step's nodes.`),
      el("figure", {}, el("figcaption", {}, "‖dW^(t)‖ per weight (rows) and step (columns); darker = a larger term"), table,
        hi > 0 ? greyLegend(lo, hi, { clamped, testid: "weights-scale" }) : ""),
      readout,
      el("table", { class: "grid" }, el("tr", {}, el("th", {}, "weight"), el("th", {}, "‖dL/dW‖ = ‖Σ_t dW^(t)‖"), el("th", {}, "‖ΔW‖")), ...rows),
      el("p", { class: "muted" }, `Update: ${up.optimizer || "sgd"}, lr ${fmt(up.lr ?? 0, 4)}, global ‖g‖ = ${fmt(up.grad_norm ?? 0, 5)}${clip}. ΔW = −lr · g for SGD.`)),
  };
}
