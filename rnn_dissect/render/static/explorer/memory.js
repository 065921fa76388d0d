// Answer 3 — what the forward pass keeps for backward: every cached tensor by step, measured
// and predicted by the closed form. Hover a row or a tensor: it is marked (●) on the graph.
import { el } from "./dom.js";
import { bytes } from "./tensor.js";

const MAX_ROWS = 80;

export function createMemory(model, bus) {
  const D = model.doc;
  const mem = D.memory;
  const cache = D.cache || [];
  const nodeOf = (name) => (model.nodes.has(name) ? name : name.split(".").slice(0, -1).join("."));
  const byT = new Map();
  for (const e of cache) {
    const k = e.t === null ? "—" : e.t;
    if (!byT.has(k)) byT.set(k, []);
    byT.get(k).push(e);
  }
  const all = cache.map((e) => nodeOf(e.name));
  const light = (ids) => bus.emit("highlight", "is-cached", ids, false);
  const showAll = el("input", { type: "checkbox", "data-testid": "memory-all", onchange: (e) => light(e.target.checked ? all : []) });
  const rows = [];
  // in step order, t = 0 (the initial state) first and the loss's "—" last: a step's cache is
  // first met where it is read, so t = 0 (read by step 1) would come after t = 1
  const steps = [...byT.keys()].sort((a, b) => (a === "—") - (b === "—") || a - b);
  for (const [t, es] of steps.slice(0, MAX_ROWS).map((t) => [t, byT.get(t)])) {
    const total = es.reduce((a, e) => a + e.bytes, 0);
    const chips = es.map((e) => el("span", {
      class: "tensor", "data-ref": nodeOf(e.name), title: `${e.name}: ${e.shape.join("×") || "scalar"} ${e.dtype}, read by ${e.saved_by.join(", ")}`,
      onmouseenter: () => light([nodeOf(e.name)]), onmouseleave: () => light(showAll.checked ? all : []),
      onclick: () => bus.emit("select", nodeOf(e.name)),
    }, e.name.replace(/^t\d+\./, "")));
    rows.push(el("tr", {
      onmouseenter: () => light(es.map((e) => nodeOf(e.name))), onmouseleave: () => light(showAll.checked ? all : []),
    }, el("td", {}, String(t)), el("td", { class: "chips" }, ...chips), el("td", { class: "num-col" }, String(total))));
  }
  const more = byT.size > MAX_ROWS ? el("p", { class: "muted" }, `… ${byT.size - MAX_ROWS} more steps in the JSON`) : "";
  const same = mem.measured_bytes === mem.formula_bytes;
  return {
    root: el("div", { class: "panel-body memory" },
      el("p", {}, "To run backward, each op needs some of the forward values (tanh needs its output, ⊙ its other factor…). What the whole pass keeps: ",
        el("b", { "data-testid": "memory-measured" }, `${mem.measured_bytes} bytes`), ` measured (${bytes(mem.measured_bytes)}), `,
        el("b", {}, `${mem.formula_bytes}`), ` by the formula${same ? " — equal" : ""}.`),
      el("p", { class: "eqline" }, mem.formula),
      el("label", { class: "toggle" }, showAll, " mark every cached tensor on the graph (●)"),
      el("table", { class: "grid", "data-testid": "memory-table" }, el("tr", {}, el("th", {}, "t"), el("th", {}, "kept for backward (hover: ● on the graph)"), el("th", {}, "bytes")), ...rows),
      more),
  };
}
