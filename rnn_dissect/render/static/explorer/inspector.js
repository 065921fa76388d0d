// The side panel: the selected node — value, gradient, what backward saved (shape, bytes),
// its equations with the numbers in — or, with nothing selected, the current frame's numbers.
import { clear, el } from "./dom.js";
import { backward, forward, vec } from "./equations.js";
import { bytes, fmt, norm, tensor } from "./tensor.js";

const MAX_LIST = 256; // numbers listed per tensor; the rest are counted

// Every number of a tensor, one per cell, the exact value in its title (testid `testid`).
function numbers(x, testid) {
  const t = tensor(x);
  if (!t) return el("div", { class: "nums empty", "data-testid": testid }, "—");
  const box = el("div", { class: "nums", "data-testid": testid, "data-shape": t.shape.join("x") });
  const n = Math.min(t.data.length, MAX_LIST);
  for (let i = 0; i < n; i++) box.append(el("span", { class: "num", title: String(t.data[i]) }, fmt(t.data[i], 6)));
  if (t.data.length > n) box.append(el("span", { class: "more" }, `… ${t.data.length - n} more (in the JSON)`));
  return box;
}

function stat(x) {
  const t = tensor(x);
  if (!t) return "";
  return `shape ${t.shape.join("×") || "scalar"} · ‖·‖₂ = ${fmt(norm(t), 5)}`;
}

export function createInspector(model, bus) {
  const { nodes, children } = model;
  const root = el("aside", { class: "rde-inspector", "aria-live": "polite" });
  let selected = null;
  let frame = null;

  // A node whose numbers stayed on the server (a big page): ask for them, then show it.
  function fetchAndShow(n) {
    if (!model.fetchNode) return showNode(n);
    model.fetchNode(n.id).then(
      (got) => { if (selected === n) showNode({ ...n, value: got.value, grad: got.grad, omitted: false }); },
      (err) => { if (selected === n) showNode(n, String((err && err.message) || err)); },
    );
    showNode(n, "asking the server for its numbers…");
  }

  function showNode(n, status) {
    const chip = el("span", { class: "chip", style: `background:${model.palette[n.kind] || "#ccc"}` }, n.kind);
    const where = [n.t !== null ? `t = ${n.t}` : null, n.layer !== null ? `layer ${n.layer}` : null, n.op !== "leaf" ? `op ${n.op}` : "leaf"].filter(Boolean).join(" · ");
    const saved = n.saved && n.saved.length
      ? el("table", { class: "saved", "data-testid": "node-saved" },
          el("tr", {}, el("th", {}, "saved"), el("th", {}, "is the value of"), el("th", {}, "shape"), el("th", {}, "bytes")),
          ...n.saved.map((s) => el("tr", {}, el("td", {}, s.name), el("td", {}, s.ref || "(its own array)"), el("td", {}, s.shape.join("×") || "scalar"), el("td", {}, String(s.bytes)))))
      : el("p", { class: "muted" }, n.op === "leaf" ? "A leaf: its backward saves nothing." : "Its backward needs nothing saved.");
    const total = (n.saved || []).reduce((a, s) => a + s.bytes, 0);
    clear(root).append(
      el("div", { class: "ins-head" },
        el("h3", { "data-testid": "node-name" }, n.name), chip,
        el("button", { type: "button", class: "close", title: "back to the frame (Esc)", onclick: () => bus.emit("select", null) }, "×")),
      el("div", { class: "muted", "data-testid": "node-id" }, `${n.id} · ${where}`),
      el("h4", {}, "forward"), forward(n, nodes, model.vocab),
      n.omitted ? el("p", { class: "note" }, status || "This page does not carry the numbers of the nodes inside the cells at this size; rnn-dissect explore (the server) shows them, as does a shorter text.") : "",
      el("h4", {}, "value ", el("small", {}, stat(n.value))), numbers(n.value, "node-value"),
      el("h4", {}, "gradient dL/d(node) ", el("small", {}, stat(n.grad))), numbers(n.grad, "node-grad"),
      el("h4", {}, "backward"), backward(n, nodes, children, model.parts),
      el("h4", {}, "what backward saved ", el("small", {}, total ? bytes(total) : "")), saved,
    );
  }

  function showFrame() {
    clear(root);
    if (!frame) {
      root.append(
        el("h3", {}, "Inspector"),
        el("p", { class: "muted" }, "Click any node of the graph (or a weight on the left) to see its value, its gradient, what its backward saved, and its equations with the numbers in."),
        el("p", { class: "muted" }, "Step through with ← / →: forward computes each step's state from the one before; backward carries the gradient back (dh_next, dc_next)."),
      );
      return;
    }
    const fwd = frame.phase === "forward";
    const field = fwd ? "value" : "grad";
    const rows = [];
    const add = (role, id, x) => {
      const n = nodes.get(id);
      rows.push(el("tr", { class: `role-${role}` },
        el("td", { class: "role" }, role),
        el("td", {}, el("a", { href: "#", "data-ref": id, onclick: (e) => { e.preventDefault(); bus.emit("select", id); } }, n ? n.name : id),
          el("small", {}, n && n.t ? ` t${n.t}` : "")),
        el("td", {}, vec(x, 4))));
    };
    for (const id of frame.computed) add("computes", id, nodes.get(id)[field]);
    for (const id of frame.reads) add(fwd ? "reads" : "receives", id, nodes.get(id)[field]);
    for (const id of frame.carries) add(fwd ? "passes on" : "sends", id, fwd ? nodes.get(id).value : frame.sent ? frame.sent[id] : null);
    root.append(
      el("h3", {}, fwd ? "This frame's values" : "This frame's gradients"),
      el("table", { class: "frame-rows" }, ...rows),
      frame.params.length ? el("p", { class: "muted" }, (fwd ? "Reads the shared weights " : "Adds a term to the gradients of ") + frame.params.join(", ") + ".") : "",
      frame.cache.length ? el("p", { class: "muted" }, `${fwd ? "Keeps" : "Reads back"} ${frame.cache.length} cached tensor(s): ${frame.cache.slice(0, 8).join(", ")}${frame.cache.length > 8 ? ", …" : ""}`) : "",
      el("p", { class: "muted" }, "Click a node for its equations."),
    );
  }

  bus.on("select", (id) => {
    selected = id && nodes.get(id) ? nodes.get(id) : null;
    if (selected && selected.omitted) fetchAndShow(selected);
    else if (selected) showNode(selected);
    else showFrame();
  });
  bus.on("frame", (f) => {
    frame = f;
    if (!selected) showFrame();
  });
  showFrame();
  return { root, selected: () => selected };
}
