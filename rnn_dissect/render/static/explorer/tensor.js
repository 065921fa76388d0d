// Tensors of the page's data: the packed float64 buffer of explore.json, unpacked once.
// A packed array is {f8: offset, shape}; it becomes {shape, data: Float64Array} (a view into
// the one buffer, exact). Plain JSON lists (dissection.json) are accepted by tensor() too.

export function unpack(doc) {
  const bin = atob(doc.buffer || "");
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const f64 = new Float64Array(bytes.buffer);
  const walk = (x) => {
    if (Array.isArray(x)) return x.map(walk);
    if (x && typeof x === "object") {
      if (typeof x.f8 === "number" && Array.isArray(x.shape)) {
        const n = x.shape.reduce((a, b) => a * b, 1);
        return { shape: x.shape, data: f64.subarray(x.f8, x.f8 + n) };
      }
      const out = {};
      for (const [k, v] of Object.entries(x)) out[k] = k === "buffer" ? null : walk(v);
      return out;
    }
    return x;
  };
  return walk(doc);
}

function flatten(x, out) {
  if (Array.isArray(x)) for (const v of x) flatten(v, out);
  else out.push(x === null ? NaN : x);
  return out;
}

function shapeOf(x) {
  const s = [];
  while (Array.isArray(x)) {
    s.push(x.length);
    x = x[0];
  }
  return s;
}

// Anything array-like as {shape, data}; null stays null.
export function tensor(x) {
  if (x === null || x === undefined) return null;
  if (x.data && x.shape) return x;
  if (typeof x === "number") return { shape: [], data: [x] };
  return { shape: shapeOf(x), data: flatten(x, []) };
}

export function size(t) {
  return t ? t.data.length : 0;
}

export function maxAbs(t) {
  let m = 0;
  if (t) for (const v of t.data) if (Math.abs(v) > m) m = Math.abs(v);
  return m;
}

export function norm(t) {
  let s = 0;
  if (t) for (const v of t.data) s += v * v;
  return Math.sqrt(s);
}

// The numbers as a JS array (batch axis of an unbatched run dropped by the caller).
export function values(t) {
  return t ? Array.from(t.data) : [];
}

// v to `digits` significant digits, plain ASCII, like render/numbers.py's num().
export function fmt(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  if (v === 0) return "0";
  const e = Math.floor(Math.log10(Math.abs(v)));
  if (e < -4 || e >= digits) {
    const [m, x] = v.toExponential(digits - 1).split("e");
    const mant = m.includes(".") ? m.replace(/0+$/, "").replace(/\.$/, "") : m;
    const ex = Number(x);
    return `${mant}e${ex < 0 ? "-" : "+"}${String(Math.abs(ex)).padStart(2, "0")}`;
  }
  const s = v.toFixed(Math.max(0, digits - 1 - e));
  return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
}

// Bytes for people: 1536 -> "1.5 KB".
export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${fmt(n / 1024, 3)} KB`;
  return `${fmt(n / 1048576, 3)} MB`;
}

// Length of a gradient bar, as render/cards.py's bar_fraction: log scale over `decades`.
export function barFraction(mag, top, decades) {
  if (!(mag > 0) || !(top > 0)) return 0;
  return Math.min(1, Math.max(0, 1 + Math.log10(mag / top) / decades));
}

// Blue-white-red of render/heatmap.py (its NEG and POS ends, not pure blue and red): black
// text keeps at least 4.5:1 contrast on every colour, and a unit looks the same here as on
// heatmaps.html. Before issue 17 the ends were rgb(0,0,255) and rgb(255,0,0): 2.4:1 and 5.3:1.
const NEG = [0x40, 0x80, 0xff];
const POS = [0xf2, 0x4d, 0x40];
export function bwr(v, center = 0, scale = 1) {
  const t = scale > 0 ? Math.min(1, Math.max(-1, (v - center) / scale)) : 0;
  const end = t < 0 ? NEG : POS;
  return `rgb(${end.map((e) => Math.round(255 + Math.abs(t) * (e - 255))).join(",")})`;
}
