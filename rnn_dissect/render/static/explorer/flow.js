// Answer 1 — how gradients flow back through time: dL/dh_t split into the part from the head
// (or the layer above) at t (direct) and the part carried from t + 1 (dh_next); the lag
// matrix ‖∂L_t'/∂h_t‖ of each layer (hover a cell: its path lights up on the graph); the
// verdict with its evidence and the Jacobians' spectra.
import { clear, el, sub } from "./dom.js";
import { bars, fitRange, greyLegend, heatmap } from "./charts.js";
import { fmt, norm, tensor } from "./tensor.js";

// The nodes on the way from h^layer_from to the loss read at step `to`: along the state lane,
// then up the stack, then the head.
export function pathIds(layer, from, to, layers) {
  const ids = [];
  for (let t = from; t <= to; t++) ids.push(`t${t}.l${layer}.h`, `t${t}.l${layer}.c`);
  for (let k = layer + 1; k < layers; k++) ids.push(`t${to}.l${k}.h`, `t${to}.l${k}.c`);
  ids.push(`t${to}.logits`, `t${to}.loss`);
  return ids;
}

export function createFlow(model, bus) {
  const D = model.doc;
  const T = D.config.steps;
  const L = D.config.num_layers;
  const layerFlow = (D.flow && D.flow.layers) || [];
  const root = el("div", { class: "panel-body flow" });
  const body = el("div", {});
  let layer = L - 1;
  const pick = L > 1
    ? el("select", { "aria-label": "layer", "data-testid": "flow-layer", onchange: (e) => { layer = Number(e.target.value); draw(); } },
        ...Array.from({ length: L }, (_, k) => el("option", { value: k, selected: k === layer }, `layer ${k}`)))
    : null;
  root.append(pick ? el("p", {}, "Show ", pick, " (the lag matrix is measured for every layer).") : "", body);

  function draw() {
    clear(body);
    const lf = layerFlow.find((f) => f.layer === layer) || layerFlow[layerFlow.length - 1] || {};
    const v = lf.verdict || {};
    body.append(el("p", { class: "verdict" }, el("span", { class: `badge v-${v.label}` }, v.label || "—"), " ", v.reason || ""));
    if (v.bound) body.append(el("p", { class: "muted" }, v.bound));
    const note = el("div", { class: "readout", "data-testid": "flow-readout" }, "Hover a cell of the lag matrix: the path from h_t to the loss at t′ lights up on the graph.");
    const carry = D.carry[layer];
    const direct = carry.map((c) => (c.norms ? c.norms.dh_direct : norm(tensor(c.dh_direct))));
    const next = carry.map((c) => (c.norms ? c.norms.dh_next : norm(tensor(c.dh_next))));
    const total = D.dh[layer].map((x) => norm(tensor(x)));
    const labels = Array.from({ length: T }, (_, i) => String(i + 1));
    const from = layer === L - 1 ? "head" : "layer above";
    const split = bars({
      series: [{ name: "direct", cls: "s-direct", values: direct }, { name: "next", cls: "s-next", values: next }, { name: "total", cls: "s-total", values: total }],
      labels, width: 430, height: 130, testid: "flow-bars",
      onHover: (i) => {
        const t = i + 1;
        const rest = carry[i].next_from === "h_n" ? "from h_n (the final state read by the model)" : "carried from t+1";
        note.textContent = `t = ${t}: ‖dL/dh${sub(t)}‖ = ${fmt(total[i], 5)}; from the ${from} ${fmt(direct[i], 4)}, ${rest} ${fmt(next[i], 4)} (vectors add; their norms need not)`;
        bus.emit("highlight", "is-path", [`t${t}.l${layer}.h`, `t${t}.logits`, `t${t}.l${layer + 1}.xw`, `t${t + 1}.l${layer}.hw`, `t${t + 1}.l${layer}.gh`], true);
      },
      onLeave: () => bus.emit("highlight", "is-path", [], true),
    });
    const lag = tensor(lf.lag || D.lag);
    // row T in words: the loss read at T — or, for a window that stops early, what the
    // verdict's last_row says it holds (the gradient from after the window too)
    const lastRow = (r) => (r === T - 1 && v.last_row && v.last_row !== "L_T's own gradient" ? v.last_row : `the loss read at t′ = ${r + 1}`);
    const cell = Math.max(4, Math.min(28, Math.floor(300 / Math.max(T, 1))));
    const lagAt = (r, c) => (c > r ? null : lag.data[r * T + c]);
    // greys fitted to the cells drawn (t ≤ t′), so that a short text's fading shows too
    const shown = lag ? Array.from({ length: T * T }, (_, i) => lagAt(Math.floor(i / T), i % T)) : [];
    const [lo, hi, clamped] = fitRange(shown, 6);
    const matrix = lag
      ? heatmap({
          rows: T, cols: T, value: lagAt, fit: [lo, hi], cell: [cell, cell], testid: "lag-matrix",
          rowLabel: (r) => `L${sub(r + 1)}`, colLabel: (c) => `h${sub(c + 1)}`,
          onHover: (r, c) => {
            const x = lagAt(r, c);
            note.textContent = Number.isFinite(x)
              ? `‖∂L${sub(r + 1)}/∂h${sub(c + 1)}‖ = ${fmt(x, 5)} (layer ${layer}): ${lastRow(r)}, felt by h at t = ${c + 1}, ${r - c} step(s) back.`
              : "not measured (beyond --max-lag, or across a truncation cut)";
            bus.emit("highlight", "is-path", pathIds(layer, c + 1, r + 1, L), true);
          },
          onLeave: () => bus.emit("highlight", "is-path", [], true),
        })
      : el("p", { class: "muted" }, "No lag matrix in this dissection.");
    body.append(
      el("div", { class: "twocol" },
        el("figure", {}, el("figcaption", {}, "‖dL/dh_t‖ per step: ", el("span", { class: "key s-direct" }, `direct (${from} at t)`), " ", el("span", { class: "key s-next" }, carry.some((c) => c.next_from === "h_n") ? `carried from t+1 (dh_next; at t = ${T}: from h_n, the final state read by the model)` : "carried from t+1 (dh_next)"), " ", el("span", { class: "key s-total" }, "total")), split),
        el("figure", {}, el("figcaption", {}, "lag matrix ‖∂L_t′/∂h_t‖ (rows t′, columns t; darker = more gradient; left along a row = further back in time)"),
          matrix, lag && hi > 0 ? greyLegend(lo, hi, { clamped, testid: "lag-scale" }) : "")),
      note,
    );
    const sv = tensor(lf.singular_values);
    if (sv && sv.data.length && sv.shape.length === 2) {
      const S = sv.shape[1];
      const largest = Array.from({ length: sv.shape[0] }, (_, t) => sv.data[t * S]);
      body.append(el("figure", {}, el("figcaption", {}, "largest singular value of each step Jacobian ∂s_t/∂s_{t−1} (above 1 can grow, below 1 shrinks)"),
        bars({ series: [{ name: "σ₁", cls: "s-sv", values: largest }], labels, width: 430, height: 90, testid: "flow-sv",
          onHover: (i) => { note.textContent = `σ₁(∂s${sub(i + 1)}/∂s${sub(i)}) = ${fmt(largest[i], 5)}`; } })));
    }
  }
  draw();
  return { root };
}
