// A node's equation with its numbers put in: forward (how its value was made from its parents)
// and backward (how its gradient sums what each reader sent back). The values are the
// engine's (float64, from the data); only softmax's p is recomputed here, for display.
import { el } from "./dom.js";
import { fmt, tensor } from "./tensor.js";

const SHOW = 6; // numbers shown inline per vector

// A vector inline: [0.1234, -0.5, …] — each number's title is its exact value.
export function vec(x, show = SHOW) {
  const t = tensor(x);
  if (!t) return el("span", { class: "vec" }, "—");
  const vals = t.data;
  if (vals.length === 1) return el("span", { class: "num", title: String(vals[0]) }, fmt(vals[0], 6));
  const kids = ["["];
  const n = Math.min(vals.length, show);
  for (let i = 0; i < n; i++) {
    if (i) kids.push(", ");
    kids.push(el("span", { class: "num", title: String(vals[i]) }, fmt(vals[i], 4)));
  }
  if (vals.length > n) kids.push(`, … ${vals.length - n} more`);
  kids.push("]");
  return el("span", { class: "vec" }, ...kids);
}

function matrixNote(x) {
  const t = tensor(x);
  return el("span", { class: "vec" }, `(${t.shape.join("×")} matrix)`);
}

const FN = { tanh: "tanh", sigmoid: "σ", relu: "relu", exp: "exp", log: "log" };

function line(...parts) {
  return el("div", { class: "eq" }, ...parts);
}

function charName(node, vocab) {
  const v = tensor(node.value);
  const idx = v ? v.data[0] : null;
  const ch = vocab[idx];
  return ch === undefined ? String(idx) : JSON.stringify(ch);
}

// The forward equation of `n`: name = formula = numbers = value.
export function forward(n, nodes, vocab) {
  const ps = n.parents.map((id) => nodes.get(id));
  const nm = n.name;
  const isParam = (p) => p.kind === "parameter";
  const arg = (p) => (isParam(p) && tensor(p.value).shape.length > 1 ? matrixNote(p.value) : vec(p.value));
  switch (n.op) {
    case "leaf":
      if (n.kind === "input" && n.id.endsWith(".x")) return line(`x = ${charName(n, vocab)}, index ${tensor(n.value).data[0]} of the vocabulary: a one-hot input, read as a column of W_ih`);
      if (n.kind === "target") return line(`y = ${charName(n, vocab)}, index ${tensor(n.value).data[0]}: the character to predict`);
      if (n.kind === "parameter") return line(`${n.id}: a shared weight, read at every step; its gradient is the sum of one term per step`);
      if (n.kind === "state") return line(`${nm}: the initial state, given (zeros unless set) = `, vec(n.value));
      return line(`${nm} = `, vec(n.value), " (a constant)");
    case "lookup":
      return line(`${nm} = column x of ${ps[0].id} = `, vec(n.value));
    case "linear":
      return line(`${nm} = ${ps[0].name} · ${ps[1].id}ᵀ${ps[2] ? " + " + ps[2].id : ""} = `, arg(ps[0]), " · ", matrixNote(ps[1].value), ps[2] ? " + " : "", ps[2] ? vec(ps[2].value) : "", " = ", vec(n.value));
    case "addn": {
      const terms = [];
      ps.forEach((p, i) => terms.push(i ? " + " : "", arg(p)));
      return line(`${nm} = ${ps.map((p) => (isParam(p) ? p.id : p.name)).join(" + ")} = `, ...terms, " = ", vec(n.value));
    }
    case "add":
    case "sub":
    case "mul": {
      const op = { add: " + ", sub: " − ", mul: " ⊙ " }[n.op];
      return line(`${nm} = ${ps.map((p) => (isParam(p) ? p.id : p.name)).join(op)} = `, arg(ps[0]), op, arg(ps[1]), " = ", vec(n.value));
    }
    case "tanh":
    case "sigmoid":
    case "relu":
    case "exp":
    case "log":
      return line(`${nm} = ${FN[n.op]}(${ps[0].name}) = ${FN[n.op]}(`, vec(ps[0].value), ") = ", vec(n.value));
    case "slice":
      return line(`${nm} = the ${nm.replace(/^a_|^g[ih]_/, "")} block of ${ps[0].name} = `, vec(n.value));
    case "softmax_ce": {
      const z = Array.from(tensor(ps[0].value).data);
      const y = tensor(ps[1].value).data[0];
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const s = e.reduce((a, b) => a + b, 0);
      return line(`${nm} = −log softmax(z)[y] = −log p[${y}], p[${y}] = ${fmt(e[y] / s, 6)} → `, vec(n.value));
    }
    case "detach":
      return line(`${nm} = ${ps[0].name}: the value flows on, the gradient stops here (truncated BPTT)`);
    default:
      return line(`${nm} = ${n.op}(${ps.map((p) => p.name).join(", ")}) = `, vec(n.value));
  }
}

const paren = (s) => (/[ ⊙+−]/.test(s) ? `(${s})` : s);

// How reader `c` turns its gradient into the part it sends to its parent `n` (position k).
function rule(c, n, k, nodes) {
  const other = c.parents.length > 1 ? nodes.get(c.parents[1 - k]) : null;
  const g = `∇${paren(c.name)}`;
  switch (c.op) {
    case "tanh": return `(1 − ${c.name}²) ⊙ ${g}`;
    case "sigmoid": return `${c.name} ⊙ (1 − ${c.name}) ⊙ ${g}`;
    case "relu": return `1[${n.name} > 0] ⊙ ${g}`;
    case "add":
    case "addn": return g;
    case "sub": return k === 0 ? g : `−${g}`;
    case "mul": return `${other ? paren(other.name) : "·"} ⊙ ${g}`;
    case "linear": return k === 0 ? `${g} · ${nodes.get(c.parents[1]).id}` : `${g}ᵀ · ${nodes.get(c.parents[0]).name}`;
    case "slice": return `${g}, put into its block`;
    case "softmax_ce": return `(softmax(${n.name}) − onehot(y)) · ${g}`;
    case "detach": return "0 (cut: nothing passes back)";
    default: return `∂${c.name}/∂${n.name} · ${g}`;
  }
}

// The backward equation of `n`: ∇n = Σ over its readers of what each sent back.
export function backward(n, nodes, children, parts) {
  if (n.grad === null) return line(n.kind === "target" || !n.kind ? "no gradient" : "no gradient (nothing the loss depends on reads it, or it is an index)");
  if (!n.parents.length && n.kind !== "parameter" && !(children.get(n.id) || []).length) return line(`∇${n.name} = `, vec(n.grad));
  const kids = (children.get(n.id) || []).filter((c) => c.grad !== null);
  if (!kids.length) return line(`∇${n.name} = dL/dL = 1: backward starts here`);
  const got = new Map((parts && parts[n.id]) || []);
  const rows = [];
  if (n.kind === "parameter") {
    rows.push(line(`∇${n.id} = Σ over the ${kids.length} nodes that read it (one term per step; see “weights”) = `, vec(n.grad)));
    return el("div", {}, ...rows);
  }
  for (const c of kids) {
    const k = c.parents.indexOf(n.id);
    const part = got.has(c.id) ? got.get(c.id) : kids.length === 1 ? n.grad : null;
    rows.push(line(`via ${c.name}${c.t ? "@t" + c.t : ""} (${c.op}): ${rule(c, n, k, nodes)}`, part ? " = " : "", part ? vec(part) : ""));
  }
  rows.push(line(`∇${n.name} = dL/d${n.name} = ${kids.length > 1 ? "the sum of the parts above = " : ""}`, vec(n.grad)));
  return el("div", {}, ...rows);
}
