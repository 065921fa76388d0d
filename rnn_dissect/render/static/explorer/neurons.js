// Neurons (LSTMVis-style): the text coloured by one unit (render/heatmap.py's blue-white-red);
// units ranked per feature; hover a character → the most active units there; with training
// snapshots, the unit over the probe text at each snapshot (how it tuned in).
import { clear, el } from "./dom.js";
import { bwr, fmt, tensor } from "./tensor.js";

const SIGMOID = new Set(["i", "f", "o", "r", "z"]);
const SHOW_CHAR = { "\n": "↵\n", "\t": "⇥", " ": " " };

// (center, scale) as render/heatmap.py's colour_scale: σ gates around ½, c by its own range.
function scaleOf(kind, vals) {
  if (SIGMOID.has(kind)) return [0.5, 0.5];
  if (kind === "c") return [0, Math.max(1e-12, ...vals.map(Math.abs))];
  return [0, 1];
}

export function createNeurons(model, bus) {
  const D = model.doc;
  const N = model.data.neurons;
  const T = D.config.steps;
  const H = D.config.hidden_size;
  const L = D.config.num_layers;
  const text = N.text;
  const kinds = ["h", ...(D.c ? ["c"] : []), ...(D.gates ? Object.keys(D.gates[0][0]) : [])];
  // activations[layer][kind] → (T, H) rows of this run, from the dissection itself (float64)
  const act = (layer, kind, t) => {
    const x = kind === "h" ? D.h[layer][t] : kind === "c" ? D.c[layer][t] : D.gates[layer][t][kind];
    return tensor(x).data;
  };
  const column = (u) => Array.from({ length: T }, (_, t) => act(u.layer, u.kind, t)[u.unit]);
  let unit = { layer: L - 1, kind: "h", unit: 0 };
  let source = N.file ? "file" : "typed";
  const first = Object.values((N.file || N).ranking || {}).find((r) => r && r.length);
  if (first) unit = { layer: first[0].layer, kind: first[0].kind, unit: first[0].unit };

  const strip = el("div", { class: "ntext", "data-testid": "neuron-text" });
  const label = el("div", { class: "nlabel" });
  const here = el("div", { class: "nhere", "data-testid": "neuron-here" }, "Hover a character: the most active units there.");
  const ranked = el("div", { class: "nranked" });
  const tuning = el("div", { class: "ntuning" });
  const layerSel = el("select", { "aria-label": "layer", onchange: () => pick({ ...unit, layer: Number(layerSel.value) }) },
    ...Array.from({ length: L }, (_, k) => el("option", { value: k }, `layer ${k}`)));
  const kindSel = el("select", { "aria-label": "kind", onchange: () => pick({ ...unit, kind: kindSel.value }) },
    ...kinds.map((k) => el("option", { value: k }, k)));
  const unitIn = el("input", { type: "number", min: 0, max: H - 1, value: unit.unit, "aria-label": "unit", "data-testid": "neuron-unit",
    onchange: () => pick({ ...unit, unit: Math.max(0, Math.min(H - 1, Number(unitIn.value) || 0)) }) });

  function paint() {
    const vals = column(unit);
    const [c, s] = scaleOf(unit.kind, vals);
    clear(strip);
    for (let t = 0; t < T; t++) {
      const ch = text[t];
      strip.append(el("span", {
        class: "nc", "data-testid": "neuron-char", "data-t": t + 1, title: `t = ${t + 1}: ${String(vals[t])}`,
        style: `background:${bwr(vals[t], c, s)}`,
        onmouseenter: () => mostActive(t),
        onclick: () => bus.emit("select", `t${t + 1}.l${unit.layer}.${unit.kind}`),
      }, SHOW_CHAR[ch] ?? ch));
    }
    label.textContent = `layer ${unit.layer} · ${unit.kind} · unit ${unit.unit} over the typed text (row t is the value after reading character t; blue −, white ${c}, red +)`;
    layerSel.value = String(unit.layer);
    kindSel.value = unit.kind;
    unitIn.value = String(unit.unit);
    paintTuning();
  }

  function mostActive(t) {
    const rows = [];
    for (let k = 0; k < L; k++) {
      const v = act(k, "h", t);
      for (let u = 0; u < v.length; u++) rows.push({ layer: k, kind: "h", unit: u, v: v[u] });
    }
    rows.sort((a, b) => Math.abs(b.v) - Math.abs(a.v) || a.layer - b.layer || a.unit - b.unit);
    clear(here).append(el("b", {}, `after ${JSON.stringify(text[t])} (t = ${t + 1}), most active h units:`),
      ...rows.slice(0, 8).map((r) => el("button", { type: "button", class: "uchip", onclick: () => pick(r) },
        `l${r.layer} h${r.unit} `, el("span", { class: r.v < 0 ? "neg" : "pos" }, fmt(r.v, 3)))));
  }

  function paintRanked() {
    const src = source === "file" ? N.file : N;
    clear(ranked);
    if (N.file) {
      ranked.append(el("div", { class: "srcpick" }, "ranked on: ",
        ...[["file", `${N.file.label}`], ["typed", `the typed text (${T} characters)`]].map(([k, lab]) =>
          el("label", {}, el("input", { type: "radio", name: "nsrc", checked: source === k, onchange: () => { source = k; paintRanked(); } }), ` ${lab} `))));
    } else ranked.append(el("p", { class: "muted" }, `Ranked on the typed text (${T} characters) — few characters, so rough; a neurons output directory (--neurons DIR) gives rankings over a long text.`));
    const metric = (f) => ((src.boolean || {})[f] ? "2·AUC−1" : "r");
    for (const [f, list] of Object.entries(src.ranking || {})) {
      if (!list || !list.length) continue;
      ranked.append(el("div", { class: "feat" }, el("span", { class: "fname" }, f, el("small", {}, ` ${metric(f)}`)),
        ...list.slice(0, 5).map((r) => el("button", {
          type: "button", class: "uchip" + (r.layer === unit.layer && r.kind === unit.kind && r.unit === unit.unit ? " on" : ""),
          onclick: () => pick(r), title: `score ${r.score}`,
        }, `l${r.layer} ${r.kind}${r.unit} `, el("span", { class: r.score < 0 ? "neg" : "pos" }, fmt(r.score, 2))))));
    }
  }

  function paintTuning() {
    clear(tuning);
    const tu = N.tuning;
    if (!tu) return;
    const img = tu.units.find((u) => u.layer === unit.layer && u.kind === unit.kind && u.unit === unit.unit);
    tuning.append(el("h4", {}, "how it tuned in during training"));
    if (!img) {
      tuning.append(el("p", { class: "muted" }, "Snapshots keep the best units per feature: ",
        ...tu.units.slice(0, 16).map((u) => el("button", { type: "button", class: "uchip", onclick: () => pick(u) }, `l${u.layer} ${u.kind}${u.unit}`))));
      return;
    }
    const im = tensor(img.image);
    const n = im.shape[1];
    const [c, s] = scaleOf(unit.kind, Array.from(im.data));
    tu.steps.forEach((step, r) => {
      const row = el("div", { class: "trow" }, el("span", { class: "tstep" }, `step ${step}`));
      for (let j = 0; j < n; j++) {
        const ch = tu.text[j];
        row.append(el("span", { class: "nc", title: String(im.data[r * n + j]), style: `background:${bwr(im.data[r * n + j], c, s)}` }, SHOW_CHAR[ch] ?? ch));
      }
      tuning.append(row);
    });
    for (const [f, cv] of Object.entries(tu.curves || {}))
      if (cv.layer === unit.layer && cv.kind === unit.kind && cv.unit === unit.unit)
        tuning.append(el("p", { class: "muted" }, `best unit for ${f}: score ${cv.scores.map((v) => fmt(v, 2)).join(" → ")}` +
          (cv.crossed_at !== null ? `; |score| ≥ ${cv.threshold} from step ${cv.crossed_at}` : "")));
  }

  function pick(u) {
    unit = { layer: u.layer, kind: u.kind, unit: u.unit };
    paint();
    paintRanked();
  }
  paint();
  paintRanked();
  return {
    root: el("div", { class: "panel-body neurons" },
      el("div", { class: "npick" }, "unit ", layerSel, kindSel, unitIn, " ", label),
      strip, here,
      el("div", { class: "twocol" }, ranked, tuning)),
  };
}
