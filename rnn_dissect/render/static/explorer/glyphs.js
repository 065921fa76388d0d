// One node's glyph on the graph: a card whose header has the node kind's colour (the SVG
// renderer's palette) and its name; under it the numbers as bars (values forward, gradients
// backward); at the bottom the gradient bar, log-scaled max|∇| against the largest in view,
// as render/cards.py draws it. Inputs and targets that are characters show the character.
import { svgEl } from "./dom.js";
import { barFraction, maxAbs, tensor } from "./tensor.js";

const LIGHT_TEXT = new Set(["state", "loss"]); // fills dark enough to need white text

// Bars of a vector inside a w×h box, centred on a zero line; `scale` maps |v| = scale to h/2.
function bars(t, w, h, scale) {
  const n = t ? t.data.length : 0;
  if (!n || !(scale > 0)) return "";
  const step = w / n;
  const bw = Math.max(step * 0.8, 0.6);
  let d = "";
  for (let i = 0; i < n; i++) {
    const v = t.data[i];
    if (!Number.isFinite(v) || v === 0) continue;
    const len = Math.max(0.6, (Math.min(Math.abs(v), scale) / scale) * (h / 2));
    const x = (i * step + (step - bw) / 2).toFixed(2);
    const y = v > 0 ? (h / 2 - len).toFixed(2) : (h / 2).toFixed(2);
    d += `M${x} ${y}h${bw.toFixed(2)}v${len.toFixed(2)}h${(-bw).toFixed(2)}z`;
  }
  return d;
}

// The label inside the header: the node's name, shortened for small glyphs.
function label(node, w) {
  const s = node.name;
  const room = Math.floor((w - 6) / 6.2);
  return s.length <= room ? s : s.slice(0, Math.max(1, room - 1)) + "…";
}

function charOf(node, vocab) {
  const v = node.value;
  const idx = Array.isArray(v) ? v.flat(Infinity)[0] : v;
  const ch = vocab && Number.isInteger(idx) ? vocab[idx] : undefined;
  if (ch === undefined) return node.name;
  return ch === "\n" ? "↵" : ch === " " ? "␣" : ch === "\t" ? "⇥" : ch;
}

// The <g> of one node centred at (x, y) with size [w, h]. `top` is the largest max|∇| in
// view; the glyph keeps both bar drawings and CSS shows one, by phase.
export function glyph(node, x, y, [w, h], ctx) {
  const fill = ctx.palette[node.kind] || "#cccccc";
  const ink = LIGHT_TEXT.has(node.kind) ? "#ffffff" : "#111111";
  const g = svgEl("g", {
    class: `node kind-${node.kind.replace(/ /g, "-")}`,
    "data-node-id": node.id,
    transform: `translate(${(x - w / 2).toFixed(1)},${(y - h / 2).toFixed(1)})`,
    tabindex: 0,
    role: "button",
    "aria-label": `${node.name} (${node.id})`,
  });
  const grad = tensor(node.grad);
  const frac = barFraction(maxAbs(grad), ctx.top, ctx.decades);
  g.append(svgEl("rect", { class: "halo", x: -5, y: -5, width: w + 10, height: h + 10, rx: 9 }));
  g.append(
    svgEl("rect", {
      class: "frame",
      width: w,
      height: h,
      rx: 5,
      "stroke-width": (0.8 + 2.4 * frac).toFixed(2),
      "stroke-dasharray": node.grad === null && node.kind !== "target" ? "3 2" : null,
    }),
  );
  // a character (or a node whose numbers the page does not carry) is drawn as its text; a
  // vector input or target (a watched module's x, the gradient g it is fed) as numbers
  const floats = !!node.value && node.value.data instanceof Float64Array; // packed float64
  const isText = !floats && (node.value === null || Number.isInteger(tensorFirst(node)));
  if ((node.kind === "input" || node.kind === "target") && isText) {
    g.append(svgEl("rect", { width: w, height: h, rx: 5, fill, class: "fill" }));
    const text = node.value !== null ? charOf(node, ctx.vocab) : node.name;
    g.append(svgEl("text", { class: "char", x: w / 2, y: h / 2 + 5, "text-anchor": "middle", text }));
  } else if (node.id.endsWith("_detach")) {
    g.append(svgEl("text", { class: "cut", x: w / 2, y: h / 2 + 5, "text-anchor": "middle", text: "✂" }));
  } else {
    g.append(svgEl("path", { class: "head", fill, d: `M0 5a5 5 0 0 1 5-5h${w - 10}a5 5 0 0 1 5 5v9h${-w}z` }));
    g.append(svgEl("text", { class: "label", x: 4, y: 11, fill: ink, text: label(node, w) }));
    const value = tensor(node.value);
    const bh = h - 14 - 7;
    const vscale = Math.max(1, maxAbs(value));
    const gscale = maxAbs(grad);
    g.append(svgEl("path", { class: "spark spark-v", transform: "translate(3,16)", d: bars(value, w - 6, bh, vscale) }));
    g.append(svgEl("path", { class: "spark spark-g", transform: "translate(3,16)", d: bars(grad, w - 6, bh, gscale) }));
    g.append(svgEl("line", { class: "zero", x1: 3, x2: w - 3, y1: 16 + bh / 2, y2: 16 + bh / 2 }));
    g.append(svgEl("rect", { class: "gbar-bg", x: 3, y: h - 5, width: w - 6, height: 3 }));
    if (frac > 0) g.append(svgEl("rect", { class: "gbar", x: 3, y: h - 5, width: ((w - 6) * frac).toFixed(1), height: 3 }));
  }
  g.append(svgEl("circle", { class: "cache-dot", cx: w - 1, cy: 1, r: 4.5 }));
  g.append(svgEl("title", { text: `${node.name} · ${node.id}${node.op !== "leaf" ? " · " + node.op : ""}` }));
  return g;
}

function tensorFirst(node) {
  const v = node.value;
  if (typeof v === "number") return v;
  if (Array.isArray(v)) return v.flat(Infinity)[0];
  return v && v.data ? v.data[0] : null;
}
