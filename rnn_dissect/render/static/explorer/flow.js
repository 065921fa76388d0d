// Answer 1 — how gradients flow back through time: dL/dh_t split into the part from the head
// at t (direct) and the part carried from t + 1 (dh_next); the lag matrix ‖∂L_t'/∂h_t‖
// (hover a cell: its path lights up on the graph); the verdict and the Jacobians' spectra.
import { el, sub } from "./dom.js";
import { bars, heatmap } from "./charts.js";
import { fmt, maxAbs, norm, tensor } from "./tensor.js";

export function pathIds(layer, from, to) {
  const ids = [];
  for (let t = from; t <= to; t++) ids.push(`t${t}.l${layer}.h`, `t${t}.l${layer}.c`);
  ids.push(`t${to}.logits`, `t${to}.loss`);
  return ids;
}

export function createFlow(model, bus) {
  const D = model.doc;
  const T = D.config.steps;
  const top = D.config.num_layers - 1;
  const note = el("div", { class: "readout", "data-testid": "flow-readout" }, "Hover a cell of the lag matrix: the path from h_t to the loss at t′ lights up on the graph.");
  const root = el("div", { class: "panel-body flow" });
  const layerFlow = (D.flow && D.flow.layers) || [];
  for (const lf of layerFlow) {
    const v = lf.verdict || {};
    root.append(el("p", { class: "verdict" }, el("span", { class: `badge v-${v.label}` }, v.label || "—"), " ",
      layerFlow.length > 1 ? `layer ${lf.layer ?? top}: ` : "", v.reason || ""));
  }
  const carry = D.carry[top];
  const direct = carry.map((c) => norm(tensor(c.dh_direct)));
  const next = carry.map((c) => norm(tensor(c.dh_next)));
  const total = D.dh[top].map((x) => norm(tensor(x)));
  const labels = Array.from({ length: T }, (_, i) => String(i + 1));
  const split = bars({
    series: [{ name: "direct", cls: "s-direct", values: direct }, { name: "next", cls: "s-next", values: next }, { name: "total", cls: "s-total", values: total }],
    labels, width: 430, height: 130, testid: "flow-bars",
    onHover: (i) => {
      const t = i + 1;
      note.textContent = `t = ${t}: ‖dL/dh${sub(t)}‖ = ${fmt(total[i], 5)} = ‖direct ${fmt(direct[i], 4)} + dh_next ${fmt(next[i], 4)}‖ (vectors add; their norms need not)`;
      bus.emit("highlight", "is-path", [`t${t}.l${top}.h`, `t${t}.logits`, `t${t + 1}.l${top}.hw`], true);
    },
    onLeave: () => bus.emit("highlight", "is-path", [], true),
  });
  const lag = tensor(D.lag);
  const lagTop = maxAbs({ data: Array.from(lag ? lag.data : []).filter(Number.isFinite) });
  const cell = Math.max(4, Math.min(16, Math.floor(300 / Math.max(T, 1))));
  const lagAt = (r, c) => (c > r ? null : lag.data[r * T + c]);
  const matrix = lag
    ? heatmap({
        rows: T, cols: T, value: lagAt, top: lagTop, decades: 6, cell: [cell, cell], testid: "lag-matrix",
        rowLabel: (r) => `L${sub(r + 1)}`, colLabel: (c) => `h${sub(c + 1)}`,
        onHover: (r, c) => {
          const v = lagAt(r, c);
          note.textContent = Number.isFinite(v)
            ? `‖∂L${sub(r + 1)}/∂h${sub(c + 1)}‖ = ${fmt(v, 5)}: the loss read at t′ = ${r + 1}, felt by h at t = ${c + 1}, ${r - c} step(s) back.`
            : `beyond --max-lag: not computed`;
          bus.emit("highlight", "is-path", pathIds(top, c + 1, r + 1), true);
        },
        onLeave: () => bus.emit("highlight", "is-path", [], true),
      })
    : el("p", { class: "muted" }, "No lag matrix in this dissection.");
  root.append(
    el("div", { class: "twocol" },
      el("figure", {}, el("figcaption", {}, "‖dL/dh_t‖ per step: ", el("span", { class: "key s-direct" }, "direct (head at t)"), " ", el("span", { class: "key s-next" }, "carried from t+1 (dh_next)"), " ", el("span", { class: "key s-total" }, "total")), split),
      el("figure", {}, el("figcaption", {}, "lag matrix ‖∂L_t′/∂h_t‖ (rows t′, columns t; log greys, black = largest)"), matrix)),
    note,
  );
  const sv = layerFlow.length ? tensor(layerFlow[layerFlow.length - 1].singular_values) : null;
  if (sv && sv.data.length) {
    const S = sv.shape[1];
    const largest = Array.from({ length: T }, (_, t) => sv.data[t * S]);
    root.append(el("figure", {}, el("figcaption", {}, "largest singular value of each step Jacobian ∂h_t/∂h_{t−1} (above 1 can grow, below 1 shrinks)"),
      bars({ series: [{ name: "σ₁", cls: "s-sv", values: largest }], labels, width: 430, height: 90, testid: "flow-sv",
        onHover: (i) => { note.textContent = `σ₁(∂h${sub(i + 1)}/∂h${sub(i)}) = ${fmt(largest[i], 5)}`; } })));
  }
  return { root };
}
