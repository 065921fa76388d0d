// What colours and marks mean: node kinds (the SVG renderer's palette), the two state paths,
// the gradient bar, and the step-through roles (outline styles, not colours).
import { el } from "./dom.js";

export function createLegend(model) {
  const kinds = [...new Set([...model.nodes.values()].map((n) => n.kind))];
  const order = Object.keys(model.palette);
  kinds.sort((a, b) => order.indexOf(a) - order.indexOf(b));
  return el("div", { class: "rde-legend", "data-testid": "legend" },
    ...kinds.map((k) => el("span", { class: "lg" }, el("i", { class: "sw", style: `background:${model.palette[k]}` }), k)),
    el("span", { class: "lg" }, el("i", { class: "ln ln-h" }), "state path h"),
    model.doc.config.cell === "lstm" ? el("span", { class: "lg" }, el("i", { class: "ln ln-c" }), "cell highway c") : "",
    el("span", { class: "lg" }, el("i", { class: "gb" }), `∇ bar: max|dL/d(node)|, log over ${model.decades} decades`),
    el("span", { class: "lg" }, el("i", { class: "role r-computed" }), "computed now"),
    el("span", { class: "lg" }, el("i", { class: "role r-read" }), "read"),
    el("span", { class: "lg" }, el("i", { class: "role r-carried" }), "carried on"),
    el("span", { class: "lg" }, el("i", { class: "dot" }), "kept for backward"));
}
