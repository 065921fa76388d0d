// Answer 4 — what the backward pass keeps and carries: per step, the gradient arriving from
// t + 1 (dh_next, dc_next), from the head (direct), and what the step computes from them
// (dh_raw, or the gate pre-activation gradients). At t = T of a model that reads the final
// state (carry[t].next_from === "h_n") the dh_next column holds dL/dh_n and says so: it comes
// from h_n, not from a step T + 1. Hover a row: the carried path lights up; click it: jump to
// that backward frame.
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
      const hn = c.next_from === "h_n"; // dh_next at T is dL/dh_n (dc_next dL/dc_n)
      const said = (name) => (hn ? { "data-testid": `carry-${name}-from-l${k}`, title: `d${name.slice(0, 1) === "h" ? "L/dh_n" : "L/dc_n"}: from ${name} (the final state read by the model), not carried from a step T + 1` } : {});
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
      el("td", said("h_n"), fmt(nm.dh_next ?? 0, 4), hn ? " from h_n" : ""),
      ...(lstm ? [el("td", {}, fmt(nm.dc ?? 0, 4)), el("td", said("c_n"), fmt(nm.dc_next ?? 0, 4), hn ? " from c_n" : "")] : []),
      ...computes.map((n) => el("td", {}, fmt(nm[n] ?? 0, 4))),
      el("td", {}, c.cut ? "✂ cut" : ""));
    });
    root.append(
      L > 1 ? el("h4", {}, `layer ${k}`) : "",
      el("table", { class: "grid", "data-testid": `carry-table-l${k}` }, el("tr", {}, ...head.map((h) => el("th", {}, h))), ...rows),
      D.carry[k].some((c) => c.next_from === "h_n")
        ? el("p", { class: "muted", "data-testid": `carry-hn-note-l${k}` }, `At t = ${D.carry[k].length} the model reads the final state: dh_next there is dL/dh_n, from h_n (the final state read by the model)${lstm ? ", and dc_next is dL/dc_n, from c_n" : ""} — no step T + 1 exists. dh_T = direct + that.`)
        : "");
  }
  root.append(el("p", { class: "muted" }, "Click a row to see that step's backward frame on the graph."));
  return { root };
}
