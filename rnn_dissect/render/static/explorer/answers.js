// The four answers (and the neurons view) as tabs under the graph, linked to it.
import { el } from "./dom.js";

export function createAnswers(panels, bus) {
  const tabs = el("div", { class: "tabs", role: "tablist" });
  const body = el("div", { class: "tab-body" });
  const buttons = [];
  panels.forEach((p, i) => {
    const b = el("button", { type: "button", role: "tab", "data-testid": `tab-${p.key}`, onclick: () => show(i) }, p.label);
    buttons.push(b);
    tabs.append(b);
    p.view.root.setAttribute("data-testid", `panel-${p.key}`);
    p.view.root.setAttribute("role", "tabpanel");
  });
  function show(i) {
    buttons.forEach((b, j) => b.setAttribute("aria-selected", String(i === j)));
    body.replaceChildren(panels[i].view.root);
    bus.emit("highlight", "is-path", [], true);
    bus.emit("highlight", "is-step", [], false);
    bus.emit("highlight", "is-cached", [], false);
  }
  show(0);
  return { root: el("section", { class: "rde-answers" }, tabs, body), show };
}
