// Small SVG charts for the answers: a heatmap and grouped bars, hover reported by callback.
// Magnitudes are drawn in greys on a log scale (black = largest): colour stays the node kinds'.
import { el, svgEl } from "./dom.js";

// A grey for v on a log scale fitted to the values shown: lo (the smallest) light grey,
// hi (the largest) near black — never white, which means 0 or not drawn.
export function fitGrey(v, lo, hi) {
  if (!(v > 0) || !(hi > 0)) return "#ffffff";
  const span = Math.log10(hi / lo);
  const f = span > 0 ? Math.min(1, Math.max(0, Math.log10(v / lo) / span)) : 1;
  const c = Math.round(225 - 205 * f);
  return `rgb(${c},${c},${c})`;
}

// [lo, hi, clamped]: the smallest and largest positive finite values; lo is raised to
// `decades` below hi if it is further (clamped: smaller values then share the lightest grey).
export function fitRange(values, decades = 6) {
  let lo = Infinity;
  let hi = 0;
  for (const v of values) if (Number.isFinite(v) && v > 0) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!(hi > 0)) return [0, 0, false];
  const floor = hi / 10 ** decades;
  return lo < floor ? [floor, hi, true] : [lo, hi, false];
}

// The legend of fitGrey's scale: a strip from lo to hi with both numbers written (as text).
export function greyLegend(lo, hi, { clamped = false, width = 160, testid } = {}) {
  const n = 24;
  const s = svgEl("svg", { class: "scale", width, height: 12, viewBox: `0 0 ${width} 12` });
  for (let i = 0; i < n; i++) {
    const v = lo * (hi / lo) ** (i / (n - 1));
    s.append(svgEl("rect", { x: (i * width) / n, y: 0, width: width / n + 0.5, height: 12, fill: fitGrey(v, lo, hi) }));
  }
  const num = (v) => (v >= 1e-3 && v < 1e4 ? v.toPrecision(3) : v.toExponential(2));
  return el("div", { class: "legend-scale", "data-testid": testid || null, "data-lo": lo, "data-hi": hi },
    el("span", { class: "num lo" }, num(lo)), " ", s, " ", el("span", { class: "num hi" }, num(hi)),
    el("span", { class: "muted" }, `log scale, ${Math.log10(hi / lo).toFixed(1)} decades: `
      + (clamped ? "the largest (dark) to 10⁻⁶ of it (light; smaller ones too)" : "the smallest shown (light) to the largest (dark)")
      + "; white = exactly 0"));
}

// rows × cols cells; value(r, c) → number | null (null: not drawn); |v| as fitGrey over
// fit = [lo, hi] (fitRange of the values shown). Returns the <svg>.
export function heatmap({ rows, cols, value, fit, cell = [14, 14], rowLabel, colLabel, onHover, onLeave, testid, left = 46 }) {
  const [cw, ch] = cell;
  const topPad = 20;
  const w = left + cols * cw + 6;
  const h = topPad + rows * ch + 6;
  const s = svgEl("svg", { class: "heat", width: w, height: h, viewBox: `0 0 ${w} ${h}`, "data-testid": testid || null });
  const colText = (c) => (colLabel ? colLabel(c) : String(c + 1));
  let widest = 1;
  for (let c = 0; c < cols; c++) widest = Math.max(widest, colText(c).length);
  const every = Math.max(1, Math.ceil((6 * widest + 4) / cw)); // labels that do not touch
  for (let c = 0; c < cols; c += every)
    s.append(svgEl("text", { class: "tick", x: left + c * cw + cw / 2, y: 13, "text-anchor": "middle", text: colText(c) }));
  const everyR = Math.max(1, Math.ceil(12 / ch));
  for (let r = 0; r < rows; r += everyR)
    s.append(svgEl("text", { class: "tick", x: left - 4, y: topPad + r * ch + ch / 2 + 4, "text-anchor": "end", text: rowLabel ? rowLabel(r) : String(r + 1) }));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = value(r, c);
      if (v === null || v === undefined) continue;
      const rect = svgEl("rect", {
        class: "hc", x: left + c * cw, y: topPad + r * ch, width: cw - 1, height: ch - 1,
        fill: Number.isFinite(v) ? fitGrey(Math.abs(v), fit[0], fit[1]) : "#f3d9d9",
        "data-r": r, "data-c": c,
      });
      s.append(rect);
    }
  }
  s.addEventListener("mouseover", (e) => {
    const r = e.target.getAttribute && e.target.getAttribute("data-r");
    if (r === null || r === undefined) return;
    for (const o of s.querySelectorAll(".hc.on")) o.classList.remove("on");
    e.target.classList.add("on");
    onHover && onHover(Number(r), Number(e.target.getAttribute("data-c")));
  });
  s.addEventListener("mouseleave", () => {
    for (const o of s.querySelectorAll(".hc.on")) o.classList.remove("on");
    onLeave && onLeave();
  });
  return s;
}

// Grouped bars over steps: series [{name, cls, values}] (same length), log or linear y.
export function bars({ series, labels, height = 120, width = 520, onHover, onLeave, testid }) {
  const n = labels.length;
  const left = 40;
  const bottom = 18;
  const plotH = height - bottom - 6;
  const slot = (width - left - 4) / Math.max(n, 1);
  const bw = Math.max(1, (slot * 0.8) / series.length);
  let top = 0;
  for (const s of series) for (const v of s.values) if (Number.isFinite(v)) top = Math.max(top, v);
  const s = svgEl("svg", { class: "bars", width, height, viewBox: `0 0 ${width} ${height}`, "data-testid": testid || null });
  s.append(svgEl("line", { class: "axis", x1: left, x2: width - 4, y1: 6 + plotH, y2: 6 + plotH }));
  s.append(svgEl("text", { class: "tick", x: left - 4, y: 12, "text-anchor": "end", text: top ? top.toPrecision(2) : "0" }));
  const every = Math.max(1, Math.ceil(18 / slot));
  for (let i = 0; i < n; i++) {
    if (i % every === 0) s.append(svgEl("text", { class: "tick", x: left + i * slot + slot / 2, y: height - 4, "text-anchor": "middle", text: labels[i] }));
    const hit = svgEl("rect", { class: "hit", x: left + i * slot, y: 6, width: slot, height: plotH, "data-i": i });
    series.forEach((ser, j) => {
      const v = ser.values[i];
      if (!Number.isFinite(v) || !top) return;
      const bh = (v / top) * plotH;
      s.append(svgEl("rect", { class: `bar ${ser.cls}`, x: left + i * slot + slot * 0.1 + j * bw, y: 6 + plotH - bh, width: bw, height: bh }));
    });
    s.append(hit);
  }
  s.addEventListener("mouseover", (e) => {
    const i = e.target.getAttribute && e.target.getAttribute("data-i");
    if (i === null || i === undefined) return;
    for (const o of s.querySelectorAll(".hit.on")) o.classList.remove("on");
    e.target.classList.add("on");
    onHover && onHover(Number(i));
  });
  s.addEventListener("mouseleave", () => {
    for (const o of s.querySelectorAll(".hit.on")) o.classList.remove("on");
    onLeave && onLeave();
  });
  return s;
}
