// The shared weights, beside the graph: drawn once (every step reads them), each a chip with
// its shape and gradient bar. They light up when a frame reads them or adds a term to them.
import { el } from "./dom.js";
import { barFraction, fmt, maxAbs, norm, tensor } from "./tensor.js";

export function createParams(model, bus) {
  const params = [...model.nodes.values()].filter((n) => n.kind === "parameter");
  let top = 0;
  for (const p of params) top = Math.max(top, maxAbs(tensor(p.grad)));
  const chips = new Map();
  const root = el("div", { class: "rde-params", role: "list", "aria-label": "shared weights" },
    el("div", { class: "rail-title" }, "shared weights"),
    el("div", { class: "rail-sub" }, "read at every step"));
  let group = null;
  for (const p of params) {
    const m = p.id.match(/_l(\d+)(_reverse)?$/); // torch's names: weight_hh_l1_reverse
    const g = p.id.startsWith("head.") ? "head" : m ? `layer ${m[1]}${m[2] ? " reverse" : ""}` : "layer ?";
    if (g !== group) {
      root.append(el("div", { class: "rail-group" }, g));
      group = g;
    }
    const t = tensor(p.grad);
    const frac = barFraction(maxAbs(t), top, model.decades);
    const chip = el("button", {
      type: "button", class: "param", "data-node-id": p.id, role: "listitem",
      title: `${p.id}: ${tensor(p.value).shape.join("×")}, ‖dL/dW‖ = ${fmt(norm(t), 5)}`,
      onclick: () => bus.emit("select", p.id),
    },
    el("span", { class: "pname" }, p.id.replace(/^rnn\./, "").replace(/_l\d+(_reverse)?$/, "")),
    el("span", { class: "pshape" }, tensor(p.value).shape.join("×")),
    el("span", { class: "gbar" }, el("span", { style: `width:${Math.round(100 * frac)}%` })));
    chips.set(p.id, chip);
    root.append(chip);
  }
  function mark(cls, ids) {
    const set = new Set(ids);
    for (const [id, c] of chips) c.classList.toggle(cls, set.has(id));
  }
  return { root, mark };
}
