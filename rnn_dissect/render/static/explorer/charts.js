// Small SVG charts for the answers: a heatmap and grouped bars, hover reported by callback.
// Magnitudes are drawn in greys on a log scale (black = largest): colour stays the node kinds'.
import { svgEl } from "./dom.js";

// A grey for |v| on a log scale spanning `decades` below `top` (white: 0 or far below).
export function grey(v, top, decades = 4) {
  if (!(v > 0) || !(top > 0)) return "#ffffff";
  const f = Math.min(1, Math.max(0, 1 + Math.log10(v / top) / decades));
  const c = Math.round(255 - 225 * f);
  return `rgb(${c},${c},${c})`;
}

// rows × cols cells; value(r, c) → number | null (null: not drawn). Returns the <svg>.
export function heatmap({ rows, cols, value, top, decades = 4, cell = [14, 14], rowLabel, colLabel, onHover, onLeave, testid, left = 46 }) {
  const [cw, ch] = cell;
  const topPad = 20;
  const w = left + cols * cw + 6;
  const h = topPad + rows * ch + 6;
  const s = svgEl("svg", { class: "heat", width: w, height: h, viewBox: `0 0 ${w} ${h}`, "data-testid": testid || null });
  const every = Math.max(1, Math.ceil(12 / cw));
  for (let c = 0; c < cols; c += every)
    s.append(svgEl("text", { class: "tick", x: left + c * cw + cw / 2, y: 13, "text-anchor": "middle", text: colLabel ? colLabel(c) : String(c + 1) }));
  const everyR = Math.max(1, Math.ceil(12 / ch));
  for (let r = 0; r < rows; r += everyR)
    s.append(svgEl("text", { class: "tick", x: left - 4, y: topPad + r * ch + ch / 2 + 4, "text-anchor": "end", text: rowLabel ? rowLabel(r) : String(r + 1) }));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = value(r, c);
      if (v === null || v === undefined) continue;
      const rect = svgEl("rect", {
        class: "hc", x: left + c * cw, y: topPad + r * ch, width: cw - 1, height: ch - 1,
        fill: Number.isFinite(v) ? grey(Math.abs(v), top, decades) : "#f3d9d9",
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
