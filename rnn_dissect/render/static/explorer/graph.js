// The unrolled graph: time steps as columns, each cell collapsed (h, c) or expanded into every
// node it records; pan (drag), zoom (wheel, + −, 0 to fit); click a node to inspect it,
// a cell or a step label to expand it. Frames and the answers light nodes and edges up.
import { clear, el, svgEl, sub } from "./dom.js";
import { bus, geometry, route } from "./geometry.js";
import { glyph } from "./glyphs.js";
import { createPanZoom } from "./panzoom.js";
import { maxAbs, tensor } from "./tensor.js";

const ROLE_CLASSES = ["is-computed", "is-read", "is-carried", "is-selected", "is-path", "is-cached", "is-step", "is-param"];

export function createGraph(model, bus_) {
  const { layout: lay, nodes, palette, vocab } = model;
  const state = { open: new Set(), geo: null }; // open: expanded cells, "t:k"
  const byId = new Map(); // node id -> its <g> (visible nodes only)
  const edgeEls = []; // {from, to, el}
  const marks = new Map(); // class -> set of ids it is on (kept across re-renders)
  let top = 0;
  for (const n of nodes.values()) if (n.kind !== "parameter") top = Math.max(top, maxAbs(tensor(n.grad)));
  const ctx = { palette, vocab, top, decades: model.decades };

  const svg = svgEl("svg", { class: "rde-graph", "data-testid": "graph", role: "img", "aria-label": "the unrolled graph" });
  const defs = svgEl("defs", {});
  for (const [id, cls] of [["rde-arrow", "arrow"], ["rde-arrow-h", "arrow arrow-h"], ["rde-arrow-c", "arrow arrow-c"]]) {
    defs.append(svgEl("marker", { id, viewBox: "0 0 10 10", refX: 8, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      svgEl("path", { d: "M0 1L9 5L0 9z", class: cls })));
  }
  const viewport = svgEl("g", { class: "viewport" });
  const layers = ["bg", "edges", "nodes", "overlay"].map((c) => svgEl("g", { class: c }));
  viewport.append(...layers);
  svg.append(defs, viewport);
  const [bgL, edgeL, nodeL, overL] = layers;

  function render() {
    const geo = (state.geo = geometry(lay, state.open, model.autoExpand));
    [bgL, edgeL, nodeL, overL].forEach(clear);
    byId.clear();
    edgeEls.length = 0;
    drawColumns(geo);
    for (const [id, p] of Object.entries(lay.place)) {
      const b = geo.pos(id);
      if (!b || !b.visible) continue;
      const g = glyph(nodes.get(id), b.x, b.y, [b.w, b.h], ctx);
      nodeL.append(g);
      byId.set(id, g);
      void p;
    }
    drawEdges(geo);
    for (const [cls, ids] of marks) mark(cls, ids);
    applyView();
  }

  function drawColumns(geo) {
    for (let t = 1; t <= geo.T; t++) {
      const x = geo.colX[t];
      const w = geo.colW[t];
      const anyOpen = Array.from({ length: geo.L }, (_, k) => geo.isOpen(t, k)).some(Boolean);
      bgL.append(svgEl("rect", { class: "col", x: x - 6, y: geo.rowY.label - 4, width: w + 12, height: geo.height - geo.rowY.label - 8, rx: 10 }));
      const lab = svgEl("g", { class: "step-label", "data-col": t, tabindex: 0, role: "button", "aria-label": `${anyOpen ? "collapse" : "expand"} step ${t}` });
      lab.append(svgEl("text", { x: x + w / 2, y: geo.rowY.label + 16, "text-anchor": "middle", text: `t = ${t}` }));
      lab.append(svgEl("text", { class: "toggle", x: x + w - 6, y: geo.rowY.label + 16, "text-anchor": "end", text: anyOpen ? "−" : "+" }));
      bgL.append(lab);
      for (let k = 0; k < geo.L; k++) {
        const b = geo.cellBox(t, k);
        bgL.append(svgEl("rect", { class: `cell${b.open ? " open" : ""}`, "data-cell": `t${t}.l${k}`, x: b.x, y: b.y, width: b.w, height: b.h, rx: 12 }));
        if (b.open) bgL.append(svgEl("text", { class: "cell-name", x: b.x + 8, y: b.y + b.h - 6, text: `${lay.cell.toUpperCase()} cell · ${model.layerName(k)} · t = ${t}` }));
      }
    }
    const x0 = geo.colX[0];
    bgL.append(svgEl("text", { class: "col-note", x: x0 + geo.colW[0] / 2, y: geo.rowY.label + 16, "text-anchor": "middle", text: "t = 0" }));
    const xt = geo.colX[geo.T + 1];
    bgL.append(svgEl("text", { class: "col-note", x: xt + geo.colW[geo.T + 1] / 2, y: geo.rowY.label + 16, "text-anchor": "middle", text: "total" }));
    for (let k = 0; k < geo.L; k++)
      bgL.append(svgEl("text", { class: "row-note", x: 4, y: geo.rowY[k] - 2, text: model.layerName(k) }));
  }

  function laneOf(from, to) {
    const a = lay.place[from];
    const b = lay.place[to];
    if (!a || !b || a.row !== b.row || typeof a.row !== "number") return "";
    const sa = a.slot.split("_")[0];
    const sb = b.slot.split("_")[0];
    if (sa === "c" && sb === "c") return " lane-c";
    if (sa === "h" && sb === "h" && a.col !== b.col) return " lane-h";
    return "";
  }

  function drawEdges(geo) {
    const contracted = new Map();
    for (const [p, c] of lay.contracted) {
      if (!contracted.has(c)) contracted.set(c, []);
      contracted.get(c).push(p);
    }
    const busY = geo.rowY.head + 6;
    for (const id of byId.keys()) {
      const n = nodes.get(id);
      const p = lay.place[id];
      const inCell = typeof p.row === "number" && p.col > 0 && !geo.isOpen(p.col, p.row) && !p.slot.endsWith("_detach");
      const parents = inCell ? contracted.get(id) || [] : n.parents;
      const b = geo.pos(id);
      for (const pid of new Set(parents)) {
        if (!byId.has(pid)) continue;
        const a = geo.pos(pid);
        const lane = laneOf(pid, id);
        const many = p.row === "tail" && lay.place[pid].row === "head";
        const d = many ? bus(a, b, busY) : route(a, b);
        const marker = lane === " lane-h" ? "rde-arrow-h" : lane === " lane-c" ? "rde-arrow-c" : "rde-arrow";
        const e = svgEl("path", { class: `edge${lane}`, d, "data-from": pid, "data-to": id, "marker-end": `url(#${marker})` });
        edgeL.append(e);
        edgeEls.push({ from: pid, to: id, el: e });
      }
    }
  }

  // ---------------------------------------------------------------- pan and zoom
  const pz = createPanZoom(svg, viewport, activate);
  function applyView() {
    pz.apply();
  }
  // The zoom that fits the graph's height with one row of cells open (so stepping, which
  // opens one cell at a time, never changes it); wide graphs then scroll sideways.
  function fit(all = false) {
    const r = svg.getBoundingClientRect();
    if (!r.width || !state.geo) return;
    const probe = model.autoExpand ? geometry(lay, new Set([`1:${lay.layers - 1}`]), true) : state.geo;
    const geo = state.geo;
    const W = Math.max(geo.width, probe.width);
    const Hh = Math.max(geo.height, probe.height);
    const kAll = Math.min(r.width / W, r.height / Hh);
    const kH = Math.min(1, r.height / Hh);
    const k = all ? Math.min(kAll, 1.25) : Math.max(Math.min(kAll, 1.25), kH);
    pz.set(Math.max(8, (r.width - geo.width * k) / 2), Math.max(0, (r.height - geo.height * k) / 2), k);
  }
  // Pan so that cell (t, layer) — or column t — is in view; centre the graph if it fits.
  function focus(t, layer) {
    const geo = state.geo;
    const r = svg.getBoundingClientRect();
    if (!geo || !r.width || t === null || t === undefined) return;
    const v = pz.view;
    let { x, y } = v;
    if (geo.width * v.k <= r.width) x = (r.width - geo.width * v.k) / 2;
    else {
      const c = Math.min(Math.max(t, 0), geo.T + 1);
      const left = geo.colX[c] * v.k + x;
      const right = (geo.colX[c] + geo.colW[c]) * v.k + x;
      if (left < 30 || right > r.width - 30) {
        x = r.width * 0.45 - (geo.colX[c] + geo.colW[c] / 2) * v.k;
        x = Math.min(20, Math.max(x, r.width - geo.width * v.k - 20));
      }
    }
    if (geo.height * v.k <= r.height) y = Math.max(0, (r.height - geo.height * v.k) / 2);
    else if (typeof layer === "number") {
      const top = geo.rowY[layer] * v.k + y;
      const bottom = (geo.rowY[layer] + geo.rowH[layer]) * v.k + y;
      if (top < 10 || bottom > r.height - 10) y = r.height / 2 - (geo.rowY[layer] + geo.rowH[layer] / 2) * v.k;
    }
    pz.set(x, y, v.k);
  }
  svg.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      activate(e.target);
      e.preventDefault();
      e.stopPropagation();
    }
  });

  function activate(target) {
    const node = target.closest && target.closest("[data-node-id]");
    if (node) return bus_.emit("select", node.getAttribute("data-node-id"));
    const cell = target.closest && target.closest("[data-cell]");
    if (cell) {
      const [, t, k] = cell.getAttribute("data-cell").match(/^t(\d+)\.l(\d+)$/);
      return toggle([`${t}:${k}`], Number(t), Number(k));
    }
    const col = target.closest && target.closest("[data-col]");
    if (col) {
      const t = Number(col.getAttribute("data-col"));
      toggle(Array.from({ length: lay.layers }, (_, k) => `${t}:${k}`), t);
    }
  }
  function toggle(keys, t, k) {
    const close = keys.some((key) => state.open.has(key));
    for (const key of keys) close ? state.open.delete(key) : state.open.add(key);
    render();
    focus(t, k);
  }

  // ---------------------------------------------------------------- highlighting
  // Put `cls` on the nodes `ids`; a node hidden inside a closed cell marks that cell instead.
  function mark(cls, ids) {
    const set = new Set(ids);
    marks.set(cls, set);
    for (const g of viewport.querySelectorAll(`.${cls}`)) g.classList.remove(cls);
    for (const id of set) {
      const g = byId.get(id);
      const p = lay.place[id];
      if (g) g.classList.add(cls);
      else if (p && typeof p.row === "number") bgL.querySelector(`[data-cell="t${p.col}.l${p.row}"]`)?.classList.add(cls);
    }
    return set;
  }
  function markEdges(cls, test) {
    for (const e of edgeEls) e.el.classList.toggle(cls, test(e.from, e.to));
  }

  // A frame of bptt/frames.py on the graph (null: none). Returns nothing; see the legend.
  function showFrame(f) {
    clear(overL);
    svg.classList.toggle("framing", !!f);
    svg.classList.toggle("phase-backward", !!f && f.phase === "backward");
    if (!f) {
      for (const c of ["is-computed", "is-read", "is-carried"]) mark(c, []);
      markEdges("is-flow", () => false);
      return;
    }
    if (model.autoExpand && f.part === "cell") {
      const key = `${f.t}:${f.layer}`;
      if (!(state.open.size === 1 && state.open.has(key))) {
        state.open = new Set([key]);
        render();
      }
    }
    const computed = mark("is-computed", f.computed);
    const reads = mark("is-read", f.reads);
    const carried = mark("is-carried", f.carries);
    const hot = new Set([...computed, ...reads]);
    markEdges("is-flow", (a, b) => computed.has(b) && hot.has(a));
    for (const id of f.carries) tag(id, f);
    focus(f.t === null ? state.geo.T + 1 : f.t, f.layer);
  }

  // A small label on a carried node: "h₃ →" forward, "← dh_next ‖·‖" backward.
  function tag(id, f) {
    const b = state.geo.pos(id);
    if (!b || !b.visible) return;
    const n = nodes.get(id);
    let text;
    if (f.phase === "forward") text = `${n.name}${n.t ? sub(n.t) : ""} →`;
    else {
      const p = lay.place[id];
      const sameLayer = p && p.row === f.layer;
      // the total loss's frame sends h_T (c_T) the final state's gradient: dL/dh_n, from h_n
      const final = f.t === null && (n.name === "h" || n.name === "c") && n.t === state.geo.T;
      const what = final ? `d${n.name}_n (from ${n.name}_n)` : sameLayer && /^c/.test(p.slot) ? "dc_next" : sameLayer ? "dh_next" : `d${n.name}`;
      const s = f.sent && f.sent[id];
      text = `← ${what}${s ? "  ‖·‖=" + Math.sqrt([...tensor(s).data].reduce((a, v) => a + v * v, 0)).toPrecision(3) : ""}`;
    }
    const g = svgEl("g", { class: "tag", transform: `translate(${(b.x - b.w / 2).toFixed(1)},${(b.y - b.h / 2 - 8).toFixed(1)})` });
    const t = svgEl("text", { x: 4, y: -4, text });
    g.append(svgEl("rect", { x: 0, y: -17, width: 8 + text.length * 6.4, height: 17, rx: 4 }), t);
    overL.append(g);
  }

  const tools = el("div", { class: "rde-gtools" },
    el("button", { type: "button", title: "zoom in (+)", onclick: () => pz.zoomBy(1.25) }, "+"),
    el("button", { type: "button", title: "zoom out (−)", onclick: () => pz.zoomBy(0.8) }, "−"),
    el("button", { type: "button", title: "fit the whole graph (0)", onclick: () => fit(true) }, "fit"),
    el("button", { type: "button", "data-testid": "expand-all", title: "open every cell into its gates, or close them all", onclick: () => setOpen(state.open.size < lay.T * lay.layers) }, "open / close all cells"),
    el("label", { class: "follow", title: "while stepping, open the cell being computed" },
      el("input", { type: "checkbox", checked: model.autoExpand, onchange: (e) => { model.autoExpand = e.target.checked; } }),
      " open the current cell"));
  function setOpen(all) {
    state.open = new Set();
    if (all) for (let t = 1; t <= lay.T; t++) for (let k = 0; k < lay.layers; k++) state.open.add(`${t}:${k}`);
    render();
    fit(true);
  }

  return {
    svg,
    tools,
    render,
    fit,
    zoomBy: (f) => pz.zoomBy(f),
    showFrame,
    focus,
    setOpen,
    // answers and inspector: light `ids` with class `cls` (is-path, is-step, is-cached, …)
    highlight(cls, ids, edgesToo = false) {
      const set = mark(cls, ids);
      if (edgesToo) markEdges(cls, (a, b) => set.has(a) && set.has(b));
      svg.classList.toggle(`has-${cls}`, set.size > 0);
    },
    clearRoles() {
      for (const c of ROLE_CLASSES) mark(c, []);
    },
    select(id) {
      mark("is-selected", id ? [id] : []);
    },
    openCells: () => new Set(state.open),
  };
}
