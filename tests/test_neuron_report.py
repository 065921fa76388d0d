"""write_report end to end on the planted LSTM: every file, read back and checked."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
from planted import python_like_text, run
from test_heatmap import Spans

from rnn_dissect.neurons.activations import Activations, UnitRef
from rnn_dissect.neurons.extremes import top_contexts
from rnn_dissect.neurons.features import builtin_features
from rnn_dissect.neurons.tuning import Snapshot
from rnn_dissect.reports.neurons import summary, terminal_heatmap, write_report


def test_write_report_on_planted_units(tmp_path):
    text = python_like_text(np.random.default_rng(1), n_lines=60)
    acts = run(text)
    feats = builtin_features(text)
    rng = np.random.default_rng(5)
    snaps = []
    for step, alpha in ((0, 0.0), (500, 0.9), (1000, 1.0)):  # units tune in over training
        mixed = {}
        for (k, kind), a in acts.arrays.items():
            noise = rng.random(a.shape) if kind in "ifo" else rng.uniform(-1, 1, a.shape)
            mixed[(k, kind)] = alpha * a + (1 - alpha) * noise
        snaps.append(Snapshot(step, Activations("lstm", acts.vocab, text, mixed)))
    extra = UnitRef(0, "f", 0)  # constant σ(20): in no top list
    rep = write_report(acts, tmp_path, feats, top=5, per_feature=2, extra_units=[extra],
                       excerpt=300, contexts=2, window=10, snapshots=snaps)  # fmt: skip
    names = sorted(p.name for p in rep.files)
    assert names == sorted(
        ["neurons.json", "heatmaps.html", "contexts.json", "saturation.png", "saturation.svg",
         "tuning.json", "score_curves.png", "score_curves.svg"]
        + [f"unit_l0_{k}{u}.{e}" for k, u in {(c["kind"], c["unit"]) for c in
           json.loads((tmp_path / "tuning.json").read_text()).values()} for e in ("png", "svg")]
        + [f"heatmap_{f.name}.svg" for f in feats if not np.all(f.values == f.values[0])]
        + ["heatmap_l0_f0.svg"]
    )  # fmt: skip
    # each feature's best unit as one SVG: its cells' values are the unit's activations
    svg = ET.parse(tmp_path / "heatmap_bracket_depth.svg").getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert "bracket_depth: layer 0 c unit 0, score +1.000" in "".join(svg.itertext())
    cells = [
        g.find(f"{ns}rect/{ns}title").text for g in svg.iter(f"{ns}g") if g.get("class") == "ch"
    ]
    want_c = acts.arrays[(0, "c")][:300, 0]
    assert len(cells) == 300 and [float(v) for v in cells] == [float(f"{x:.4g}") for x in want_c]

    doc = json.loads((tmp_path / "neurons.json").read_text())
    assert doc["features"]["bracket_depth"][0] == {"layer": 0, "unit": 0, "kind": "c", "score": 1.0}
    assert doc["features"]["in_quote"][0]["unit"] == 1

    # heatmaps.html: one span per character of the excerpt and of every context
    ctx = json.loads((tmp_path / "contexts.json").read_text())
    assert [UnitRef(c["layer"], c["kind"], c["unit"]) for c in ctx] == rep.heat_units
    assert rep.heat_units[-1] == extra and len(ctx[0]["top"]) == 2
    p = Spans()
    p.feed((tmp_path / "heatmaps.html").read_text())
    want_text = "".join(
        text[:300] + "".join(s["text"] for s in c["top"] + c["bottom"]) for c in ctx
    )
    assert "".join(p.text) == want_text
    first = [float(s["data-v"]) for s in p.spans[:300]]
    assert first == acts.arrays[(0, rep.heat_units[0].kind)][:300, rep.heat_units[0].unit].tolist()

    # tuning: the best unit at the last snapshot, its score per step, where it crossed 0.5
    tun = json.loads((tmp_path / "tuning.json").read_text())
    bd = tun["bracket_depth"]
    assert (bd["unit"], bd["kind"], bd["steps"]) == (0, "c", [0, 500, 1000])
    depth = feats[1].values
    want = [np.corrcoef(depth, s.acts.arrays[(0, "c")][:, 0])[0, 1] for s in snaps]
    assert np.allclose(bd["scores"], want, atol=2e-6) and bd["crossed_at"] == 500
    # what callers get in memory is what the files hold (the tour reads these, not the files)
    assert rep.tuning == tun and [c.feature for c in rep.curves] == list(tun)
    for c in rep.curves:
        assert np.allclose(c.scores, tun[c.feature]["scores"], rtol=0, atol=5e-7)
    assert [(u.unit, [x.position for x in u.top]) for u in rep.contexts] == [
        (UnitRef(c["layer"], c["kind"], c["unit"]), [x["position"] for x in c["top"]]) for c in ctx
    ]

    # fewer contexts asked for are a prefix of these (the tour shows the first two)
    def key(uc):
        return [(c.position, c.value, c.start, c.text, c.values.tolist()) for c in uc.top]

    one = top_contexts(acts, rep.heat_units, 1, 10)
    assert [key(u)[:1] for u in rep.contexts] == [key(u) for u in one]
    # issue 17: the first `window` characters (the start-up from the zero state) are not
    # ranked; contexts.json and the page say so
    assert all(c["skipped"] == 10 for c in ctx)
    assert all(x["position"] >= 10 for c in ctx for x in c["top"] + c["bottom"])
    assert "The first 10 characters are not ranked" in (tmp_path / "heatmaps.html").read_text()
    # the saturation scatter: one mark per unit for each of the 4 gates
    root = ET.parse(tmp_path / "saturation.svg").getroot()
    for g in "ifgo":
        (el,) = [e for e in root.iter() if e.get("id") == f"sat-l0-{g}"]
        assert len(list(el.iter("{http://www.w3.org/2000/svg}use"))) == 8

    lines = summary(rep.scores, top=2).splitlines()
    assert lines[2].split()[:4] == ["bracket_depth", "r", "l0", "c0"]
    plain = re.sub(r"\x1b\[[0-9;]*m", "", terminal_heatmap(acts, UnitRef(0, "c", 0), 200, 100))
    assert plain == text[:100].replace("\t", " " * 8)
