// DOM helpers: every string becomes a text node or an attribute value, never markup.
const SVG_NS = "http://www.w3.org/2000/svg";

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = String(v);
    else if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
}

function addKids(e, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    e.append(typeof k === "object" ? k : document.createTextNode(String(k)));
  }
}

// el("div", {class: "x", onclick: f}, "text", child): an HTML element.
export function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  addKids(e, kids);
  return e;
}

// The same for SVG elements.
export function svgEl(tag, attrs, ...kids) {
  const e = document.createElementNS(SVG_NS, tag);
  setAttrs(e, attrs);
  addKids(e, kids);
  return e;
}

export function clear(e) {
  e.replaceChildren();
  return e;
}

// A tiny publish/subscribe hub: the views talk through it, never through globals.
export function createBus() {
  const subs = new Map();
  return {
    on(name, fn) {
      if (!subs.has(name)) subs.set(name, []);
      subs.get(name).push(fn);
    },
    emit(name, ...args) {
      for (const fn of subs.get(name) || []) fn(...args);
    },
  };
}

// Subscript digits for step indices in labels: 12 -> "₁₂".
export function sub(n) {
  return String(n).replace(/[0-9]/g, (d) => "₀₁₂₃₄₅₆₇₈₉"[d]);
}
