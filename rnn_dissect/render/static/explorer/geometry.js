// Where every node, cell and edge of the unrolled graph goes, from the layout the Python side
// computed (render/explore_layout.py) and the set of expanded columns. Pure: data in, boxes out.

export const GAP = 20; // between step columns
export const LABEL_H = 34; // the row of step labels on top
export const MARGIN = 16;

// Columns 0 (initial state), 1..T, T + 1 (total loss); rows top to bottom: label, head,
// layers L-1..0, input. `open` holds the expanded cells as "t:k"; a column is wide when one
// of its cells is open, a row tall when one of its cells is (or always, with `tall`).
export function geometry(lay, open, tall = false) {
  const T = lay.T;
  const L = lay.layers;
  const colOpen = new Set([...open].map((key) => Number(key.split(":")[0])));
  const rowOpen = new Set([...open].map((key) => Number(key.split(":")[1])));
  const small = lay.cells.collapsed.size;
  const big = lay.cells.expanded.size;
  const colW = [];
  for (let c = 0; c <= T + 1; c++) {
    if (c === 0) colW.push(lay.start.width);
    else if (c === T + 1) colW.push(lay.tail.width);
    else colW.push(colOpen.has(c) ? big[0] : small[0]);
  }
  const colX = [MARGIN];
  for (let c = 1; c <= T + 1; c++) colX.push(colX[c - 1] + colW[c - 1] + GAP);
  const rowY = { label: MARGIN, head: MARGIN + LABEL_H };
  const rowH = {};
  let y = rowY.head + lay.head.size[1];
  for (let k = L - 1; k >= 0; k--) {
    rowH[k] = rowOpen.has(k) || (tall && L === 1) ? big[1] : small[1];
    rowY[k] = y + 8;
    y += rowH[k] + 16;
  }
  rowY.input = y;
  const height = y + lay.input.size[1] + MARGIN;
  const width = colX[T + 1] + colW[T + 1] + MARGIN;
  const isOpen = (c, k) => open.has(`${c}:${k}`);

  // the box of cell (t, k): a collapsed cell sits in the middle of a wide column
  function cellBox(c, k) {
    const w = isOpen(c, k) ? big[0] : small[0];
    return { x: colX[c] + (colW[c] - w) / 2, y: rowY[k], w, h: rowH[k], open: isOpen(c, k) };
  }

  // slot centre inside a cell box of the given mode, anchored to the row's top or bottom
  function cellSlot(mode, slot, h) {
    const t = lay.cells[mode];
    let s = t.slots[slot];
    if (!s && slot.endsWith("_detach")) {
      const lane = t.slots[slot.replace("_detach", "")] || [0, t.size[1] / 2];
      s = [t.size[0] - 2, lane[1]];
    }
    if (!s) return null;
    const [x, yy] = s;
    if (mode === "collapsed" && h > t.size[1] && yy > t.size[1] / 2) return [x, h - (t.size[1] - yy)];
    return [x, yy];
  }

  function pos(id) {
    const p = lay.place[id];
    if (!p) return null;
    const [w, h] = lay.sizes[p.slot] || lay.node;
    const c = p.col;
    if (p.row === "head" || p.row === "input") {
      const s = lay[p.row].slots[p.slot] || [0, 0];
      return { x: colX[c] + colW[c] / 2 + s[0], y: rowY[p.row] + s[1], w, h, visible: true };
    }
    if (p.row === "tail") {
      const s = lay.tail.slots[p.slot] || [colW[c] / 2, 40];
      return { x: colX[c] + s[0], y: rowY.head + s[1], w, h, visible: true };
    }
    const k = p.row;
    const mode = c > 0 && isOpen(c, k) ? "expanded" : "collapsed";
    if (p.hidden && mode === "collapsed") return { visible: false };
    const s = cellSlot(mode, p.slot, rowH[k]) || [small[0] / 2, rowH[k] / 2];
    const x = c === 0 ? colX[0] + colW[0] / 2 : cellBox(c, k).x + s[0];
    return { x, y: rowY[k] + s[1], w, h, visible: true };
  }

  return { T, L, colW, colX, rowY, rowH, width, height, pos, cellBox, isOpen };
}

// An edge from box a to box b: side to side when they stand side by side, else bottom to
// top (or top to bottom), as a cubic curve.
export function route(a, b) {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  if (Math.abs(dx) > (a.w + b.w) / 2 + 4 && Math.abs(dx) >= Math.abs(dy) * 0.6) {
    const s = Math.sign(dx);
    const x0 = a.x + (s * a.w) / 2;
    const x1 = b.x - (s * b.w) / 2 - s * 3;
    const c = Math.max(Math.abs(x1 - x0) / 2, 12);
    return `M${x0.toFixed(1)} ${a.y.toFixed(1)}C${(x0 + s * c).toFixed(1)} ${a.y.toFixed(1)} ${(x1 - s * c).toFixed(1)} ${b.y.toFixed(1)} ${x1.toFixed(1)} ${b.y.toFixed(1)}`;
  }
  const s = Math.sign(dy) || -1;
  const y0 = a.y + (s * a.h) / 2;
  const y1 = b.y - (s * b.h) / 2 - s * 3;
  const c = Math.max(Math.abs(y1 - y0) / 2, 10);
  return `M${a.x.toFixed(1)} ${y0.toFixed(1)}C${a.x.toFixed(1)} ${(y0 + s * c).toFixed(1)} ${b.x.toFixed(1)} ${(y1 - s * c).toFixed(1)} ${b.x.toFixed(1)} ${y1.toFixed(1)}`;
}

// A bus: up from a to the line at busY, then along it into b's side (many edges, one line).
export function bus(a, b, busY) {
  const x1 = b.x - b.w / 2 - 3;
  return `M${a.x.toFixed(1)} ${(a.y - a.h / 2).toFixed(1)}V${busY.toFixed(1)}H${(x1 - 14).toFixed(1)}C${(x1 - 4).toFixed(1)} ${busY.toFixed(1)} ${(x1 - 8).toFixed(1)} ${b.y.toFixed(1)} ${x1.toFixed(1)} ${b.y.toFixed(1)}`;
}
