// Answer 4 — what the backward pass keeps and carries: per step, the gradient arriving from
// t + 1 (dh_next, dc_next), from the head (direct), and what the step computes from them
// (dh_raw, or the gate pre-activation gradients). Hover a row: the carried path lights up;
// click it: jump to that backward frame.
import { el } from "./dom.js";
import { fmt, norm, tensor } from "./tensor.js";

export function createCarry(model, bus) {
  const D = model.doc;
  const L = D.config.num_layers;
  const lstm = D.config.cell === "lstm";
  const frames = D.frames || [];
  const root = el("div", { class: "panel-body carry" },
    el("p", {}, "Going backward, step t receives dL/dh_t from two places and adds them: from what reads h_t at the same step (the head, or the layer above) and from step t + 1 — ",
      el("b", {}, "dh_next"), lstm ? ", and for the cell state " : "", lstm ? el("b", {}, "dc_next = f_{t+1} ⊙ dc_{t+1}") : "",
      ". From them it computes the pre-activation gradient that every weight-gradient term is built from."));
  for (let k = L - 1; k >= 0; k--) {
    const row0 = D.carry[k][0];
    const computes = Object.keys(row0.computes || {});
    const head = ["t", "‖dh_t‖", "‖direct‖", "‖dh_next‖", ...(lstm ? ["‖dc_t‖", "‖dc_next‖"] : []), ...computes.map((c) => `‖${c}‖`), ""];
    const rows = D.carry[k].map((c) => {
      const t = c.t;
      const nm = c.norms || {};
      const ids = [`t${t}.l${k}.h`, `t${t}.l${k}.c`, `t${t + 1}.l${k}.hw`, `t${t + 1}.l${k}.gh`, `t${t + 1}.l${k}.fc`, `t${t + 1}.l${k}.h`, `t${t + 1}.l${k}.c`];
      const fi = frames.findIndex((f) => f.phase === "backward" && f.part === "cell" && f.t === t && f.layer === k);
      return el("tr", {
        class: fi >= 0 ? "link" : "",
        onmouseenter: () => bus.emit("highlight", "is-path", ids, true),
        onmouseleave: () => bus.emit("highlight", "is-path", [], true),
        onclick: () => fi >= 0 && bus.emit("goto-frame", fi + 1),
      },
      el("td", {}, String(t)),
      el("td", {}, fmt(nm.dh ?? norm(tensor(D.dh[k][t - 1])), 4)),
      el("td", {}, fmt(nm.dh_direct ?? 0, 4)),
      el("td", {}, fmt(nm.dh_next ?? 0, 4)),
      ...(lstm ? [el("td", {}, fmt(nm.dc ?? 0, 4)), el("td", {}, fmt(nm.dc_next ?? 0, 4))] : []),
      ...computes.map((n) => el("td", {}, fmt(nm[n] ?? 0, 4))),
      el("td", {}, c.cut ? "✂ cut" : ""));
    });
    root.append(
      L > 1 ? el("h4", {}, `layer ${k}`) : "",
      el("table", { class: "grid", "data-testid": `carry-table-l${k}` }, el("tr", {}, ...head.map((h) => el("th", {}, h))), ...rows));
  }
  root.append(el("p", { class: "muted" }, "Click a row to see that step's backward frame on the graph."));
  return { root };
}
