"""Scoring units against features: planted units found first, every statistic vs an oracle.

Oracles: a hand-wired torch.nn.LSTM in float64 (tests/planted.py), numpy.corrcoef for r, a
pairwise count for AUC, a full sort for the streamed top contexts, hand-derived fractions
for gate saturation.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from planted import python_like_text, run

from rnn_dissect.errors import UserError
from rnn_dissect.neurons import ranking as neurons
from rnn_dissect.neurons.activations import Activations, UnitRef, load
from rnn_dissect.neurons.extremes import gate_saturation, top_contexts, warm_up
from rnn_dissect.neurons.features import Feature, builtin_features
from rnn_dissect.neurons.ranking import score_units
from rnn_dissect.neurons.scoring import HistogramAUC, auc_exact
from rnn_dissect.neurons.tuning import Snapshot, tuning_curves, unit_image
from rnn_dissect.train.snapshot import unit_param_norms


@pytest.fixture(scope="module")
def planted():
    text = python_like_text(np.random.default_rng(1))
    return run(text), builtin_features(text)


@pytest.mark.parametrize("auc", ["exact", "histogram"])
def test_planted_units_rank_first(planted, auc):
    acts, feats = planted
    s = score_units(acts, feats, auc=auc)
    for feature, unit in (("bracket_depth", 0), ("in_quote", 1), ("line_position", 2)):
        best = s.ranking(feature)[0]
        assert (best["layer"], best["unit"]) == (0, unit), feature
        assert best["score"] > 0.95, feature
    # c₀ = 0.1·depth exactly, so r is 1 up to the forget gate's 2e-9 leak per step
    assert s.ranking("bracket_depth")[0]["kind"] == "c"
    assert s.ranking("bracket_depth")[0]["score"] == pytest.approx(1.0, abs=1e-6)
    # random-weight units (4..7) do track character classes, but never a planted feature
    # as well as the planted unit, nor strongly
    for feature in ("bracket_depth", "in_quote", "line_position"):
        f = s.features.index(feature)
        rand = [j for j, u in enumerate(s.units) if u.unit >= 4]
        assert np.abs(s.score[f, rand]).max() < 0.8


def test_unrelated_units_score_within_chance(planted):
    """Noise units: every score within 5 standard deviations of its null distribution."""
    acts, feats = planted
    N = acts.n_chars
    noise = np.random.default_rng(7).standard_normal((N, 5))
    s = score_units(Activations("rnn", acts.vocab, acts.text, {(0, "h"): noise}), feats)
    for f, feat in enumerate(feats):
        if s.constant[f]:
            continue
        if feat.boolean:
            n1 = feat.values.sum()
            sd = 2 * np.sqrt((N + 1) / (12 * n1 * (N - n1)))  # sd of 2·AUC − 1 under H0
        else:
            sd = 1 / np.sqrt(N)
        assert np.abs(s.score[f]).max() < 5 * sd, feat.name


def test_pearson_streams_to_corrcoef(monkeypatch):
    monkeypatch.setattr(neurons, "BLOCK_BYTES", 1)  # 256-row blocks: 6 of them
    rng = np.random.default_rng(0)
    N = 1500
    a = rng.standard_normal((N, 4)) + 1e4  # a large offset must not cancel the variance
    a[:, 1] = 3.0  # constant unit: r is 0, not NaN
    a[:, 2] = a[:, 0] * 0.5 + rng.standard_normal(N) * 0.1
    x = rng.standard_normal(N) * 2 + 7
    feats = [
        Feature("x", x.astype(np.float32), False),
        Feature("y", a[:, 0].astype(np.float32), False),
    ]
    s = score_units(Activations("rnn", ("a",), "a" * N, {(0, "h"): a}), feats)
    for f, feat in enumerate(feats):
        for u in (0, 2, 3):
            want = np.corrcoef(feat.values.astype(np.float64), a[:, u])[0, 1]
            assert abs(s.pearson[f, u] - want) < 1e-10
        assert s.pearson[f, 1] == 0.0


def pairwise_auc(v: np.ndarray, y: np.ndarray) -> float:
    pos, neg = v[y], v[~y]
    gt = (pos[:, None] > neg[None, :]).sum()
    eq = (pos[:, None] == neg[None, :]).sum()
    return (gt + 0.5 * eq) / (len(pos) * len(neg))


def test_auc_exact_matches_pairwise_count_with_ties():
    rng = np.random.default_rng(1)
    a = np.round(rng.standard_normal((400, 3)), 1)  # many ties
    y = np.stack([rng.random(400) < 0.3, a[:, 0] + rng.standard_normal(400) > 0], axis=1)
    got = auc_exact(a, y)
    for f in range(2):
        for u in range(3):
            assert got[f, u] == pytest.approx(pairwise_auc(a[:, u], y[:, f]), abs=1e-12)


def streamed_hist(a: np.ndarray, y: np.ndarray, transform: str, bins: int = 512):
    hist = HistogramAUC(a[::7], F=y.shape[1], bins=bins, transform=transform)
    for s in range(0, len(a), 3000):
        hist.add(a[s : s + 3000], y[s : s + 3000])
    return hist.result()


def test_histogram_auc_within_its_bound_of_exact():
    rng = np.random.default_rng(2)
    N = 20000
    y = np.stack([rng.random(N) < 0.2, rng.random(N) < 0.6], axis=1)  # (N, 2)
    cont = rng.standard_normal(N) + y[:, 0]  # continuous, informative
    # σ gates: spread over (0, 0.9) half the time, else saturated in clusters 1e-7 wide
    # near 1, ordered by the label; stuck at exactly 1.0 on half the characters; five
    # exact values; constant
    sat = np.where(
        rng.random(N) < 0.5, rng.random(N) * 0.9, 1 - 1e-7 * (rng.random(N) + 2 * y[:, 0])
    )
    stuck = np.where(rng.random(N) < 0.5, 1.0, rng.random(N) * y[:, 1])
    disc = rng.integers(0, 5, N) * 0.25
    const = np.full(N, 0.3)
    gates = np.stack([sat, stuck, disc, const], axis=1)  # (N, 4)
    for a, transform, tight in ((cont[:, None], "identity", [0]), (gates, "logit", [0, 1, 3])):
        got, bound = streamed_hist(a, y, transform)
        want = auc_exact(a, y)
        assert np.all(np.abs(got - want) <= bound + 1e-12), transform
        # (ties at interior values, as in disc, are exact but not known to be: bound > 0)
        assert bound[:, tight].max() < 0.01, transform
    got, bound = streamed_hist(gates, y, "logit")
    want = auc_exact(gates, y)
    assert abs(got[0, 0] - want[0, 0]) < 0.002  # the clusters are resolved
    assert np.allclose(got[:, 2:], want[:, 2:], atol=1e-12, rtol=0)  # disc, const: all ties
    assert np.all(bound[:, 3] == 0) and np.all(got[:, 3] == 0.5)
    # uniform bins on the raw values lump each cluster into one bin — the bound says so
    got_raw, bound_raw = streamed_hist(gates, y, "identity")
    assert abs(got_raw[0, 0] - want[0, 0]) > 0.1 and bound_raw[0, 0] > 0.1
    assert abs(got_raw[0, 0] - want[0, 0]) <= bound_raw[0, 0]


def test_scores_from_disk_equal_in_memory_and_json_contract(planted, tmp_path, monkeypatch):
    acts, feats = planted
    disk = acts.save(tmp_path / "acts")
    assert isinstance(disk.arrays[(0, "c")], np.memmap)
    assert np.array_equal(disk.rows((0, "c"), 10, 50), acts.arrays[(0, "c")][10:50])
    assert load(tmp_path / "acts").text == acts.text
    monkeypatch.setattr(neurons, "BLOCK_BYTES", 1)
    a, b = score_units(acts, feats), score_units(disk, feats)
    assert np.array_equal(a.score, b.score)
    assert a.to_json() == b.to_json()  # byte-identical
    doc = json.loads(a.to_json(top=5))
    assert list(doc["features"]) == [f.name for f in feats]
    assert doc["features"]["in_comment"] == [] and doc["feature_info"]["in_comment"]["constant"]
    for name, ranked in doc["features"].items():
        assert len(ranked) == (0 if name == "in_comment" else 5)
        assert all(list(e) == ["layer", "unit", "kind", "score"] for e in ranked)
        mags = [abs(e["score"]) for e in ranked]
        assert mags == sorted(mags, reverse=True)
    full = a.ranking("letter")
    assert len(full) == acts.unit_count() == 48
    j = a.units.index(UnitRef(full[0]["layer"], full[0]["kind"], full[0]["unit"]))
    assert full[0]["score"] == round(a.score[a.features.index("letter"), j], 6)


def test_unit_ref_dict_round_trip(planted):
    acts, feats = planted
    for u in [*acts.units((0, "c")), UnitRef(3, "f", 511)]:
        d = json.loads(json.dumps(u.to_dict()))  # through a file, as neurons.json holds it
        assert d == {"layer": u.layer, "unit": u.unit, "kind": u.kind}
        back = UnitRef.from_dict(d)
        assert back == u and type(back.layer) is type(back.unit) is int
    scores = score_units(acts, feats)
    r = scores.ranking("bracket_depth", 1)[0]  # a ranking entry: its score is not part of it
    assert (
        UnitRef.from_dict(r) == scores.best("bracket_depth") == (r["layer"], r["kind"], r["unit"])
    )
    assert UnitRef.from_dict({"layer": 1.0, "kind": "h", "unit": "2"}) == UnitRef(1, "h", 2)


def brute_contexts(v: np.ndarray, k: int, w: int, skip: int = 0) -> list[tuple[int, float]]:
    """A full sort of every position from ``skip`` on, then the greedy picks."""
    order = np.lexsort((np.arange(len(v)), -v))
    picked: list[tuple[int, float]] = []
    for p in order.tolist():
        if p < skip:
            continue
        if all(abs(p - q) > w for q, _ in picked):
            picked.append((p, float(v[p])))
            if len(picked) == k:
                break
    return picked


def test_top_contexts_match_a_full_sort(monkeypatch):
    monkeypatch.setattr(neurons, "BLOCK_BYTES", 1)  # stream in 256-row blocks
    rng = np.random.default_rng(3)
    N = 3000
    text = "".join(rng.choice(list("ab(\n"), N))
    a = np.round(rng.standard_normal((N, 3)), 1)  # ties everywhere
    acts = Activations("rnn", tuple("\nab("), text, {(0, "h"): a})
    units = [UnitRef(0, "h", 2), UnitRef(0, "h", 0)]
    got = top_contexts(acts, units, k=4, window=6)
    for uc, u in zip(got, units, strict=True):
        col = a[:, u.unit]
        assert uc.skipped == 6  # the warm-up: the first `window` characters
        assert [(c.position, c.value) for c in uc.top] == brute_contexts(col, 4, 6, 6)
        assert [(c.position, -c.value) for c in uc.bottom] == brute_contexts(-col, 4, 6, 6)
        for c in uc.top + uc.bottom:
            assert c.text == text[c.start : c.start + len(c.text)]
            assert np.array_equal(c.values, col[c.start : c.start + len(c.text)])
            assert c.start == max(0, c.position - 6) and len(c.text) <= 13


def test_top_contexts_skip_the_start_up_from_the_zero_state(monkeypatch):
    """Issue 17: a cell state negative over the whole text rises from c_0 = 0, so its
    "highest" value was at character 0 — the start-up, not the text. The first ``window``
    characters are not ranked once the text has more than 2·window; a shorter text keeps
    them all. Streaming in blocks smaller than the warm-up still equals the full sort."""
    monkeypatch.setattr(neurons, "BLOCK_BYTES", 1)  # 256-row blocks
    rng = np.random.default_rng(7)
    N, w = 600, 300 // 2 - 1  # a warm-up of 149 rows: inside the first block, and not
    t = np.arange(N)
    c = -1.0 + np.exp(-t / 3.0) + 0.05 * np.sin(t / 7.0)  # leaves 0 towards −1, wobbling
    c[400] = -0.2  # a real high, well past the start-up
    c[200] = -0.3
    text = "".join(rng.choice(list("ab \n"), N))
    acts = Activations("lstm", tuple(" \nab"), text, {(0, "c"): c[:, None]})
    for window in (2, w, 256, 300):  # 300: the text is not longer than 2·window
        (uc,) = top_contexts(acts, [UnitRef(0, "c", 0)], k=3, window=window)
        skip = window if 2 * window < N else 0
        assert uc.skipped == skip == warm_up(N, window)
        assert [(x.position, x.value) for x in uc.top] == brute_contexts(c, 3, window, skip)
        assert [(x.position, -x.value) for x in uc.bottom] == brute_contexts(-c, 3, window, skip)
        assert all(x.position >= skip for x in uc.top + uc.bottom)
    (uc,) = top_contexts(acts, [UnitRef(0, "c", 0)], k=2, window=20)
    assert [x.position for x in uc.top] == [400, 200]  # not 0, where c_1 has barely left 0
    (whole,) = top_contexts(acts, [UnitRef(0, "c", 0)], k=1, window=300)
    assert whole.top[0].position == 0  # a short text is ranked whole: the start-up shows


def test_gate_saturation_by_hand(planted):
    acts, _ = planted
    sat = {(s.layer, s.kind): s for s in gate_saturation(acts)}
    assert sorted(sat) == [(0, "f"), (0, "g"), (0, "i"), (0, "o")]
    text = np.array(list(acts.text))
    brackets = np.isin(text, list("()[]{}")).mean()
    newlines = (text == "\n").mean()
    assert (sat[0, "f"].right[0], sat[0, "f"].left[0]) == (1.0, 0.0)  # bracket unit: f = σ(20)
    assert sat[0, "i"].right[0] == pytest.approx(brackets) and sat[0, "i"].left[0] == pytest.approx(
        1 - brackets
    )
    assert (sat[0, "g"].right[0], sat[0, "g"].left[0]) == (0.0, 0.0)  # g = ±0.1: tanh range ±0.8
    assert sat[0, "g"].right[3] == pytest.approx(newlines)  # newline unit: g = ±1
    assert sat[0, "g"].left[3] == pytest.approx(1 - newlines)
    for (k, kind), s in sat.items():
        v = acts.arrays[(k, kind)]
        lo, hi = (0.1, 0.9) if kind != "g" else (-0.8, 0.8)
        assert np.array_equal(s.left, (v < lo).mean(axis=0))
        assert np.array_equal(s.right, (v > hi).mean(axis=0))


def test_tuning_curves_and_unit_image():
    rng = np.random.default_rng(4)
    N = 2000
    text = "".join(rng.choice(list("(x)\n"), N))
    depth = builtin_features(text, ["bracket_depth"])[0]
    z = (depth.values - depth.values.mean()) / depth.values.std()
    noise = rng.standard_normal((N, 3))
    snaps = []
    for step, alpha in ((0, 0.0), (100, 0.3), (200, 0.6), (300, 0.9)):
        a = noise.copy()
        a[:, 1] = alpha * z + (1 - alpha) * noise[:, 1]  # unit 1 tunes in to depth
        snaps.append(Snapshot(step, Activations("rnn", tuple("\n()x"), text, {(0, "h"): a})))
    (curve,) = tuning_curves(snaps, [depth], threshold=0.5)
    want = np.array([np.corrcoef(depth.values, s.acts.arrays[(0, "h")][:, 1])[0, 1] for s in snaps])
    assert curve.unit == UnitRef(0, "h", 1)
    assert np.allclose(curve.scores, want, atol=1e-10, rtol=0)
    assert curve.crossed_at == int(curve.steps[np.argmax(np.abs(want) >= 0.5)]) == 200
    assert np.abs(curve.best_any[-1]) == pytest.approx(abs(want[-1]))
    steps, img = unit_image(snaps, UnitRef(0, "h", 1))
    assert steps.tolist() == [0, 100, 200, 300]
    assert np.array_equal(img, np.stack([s.acts.arrays[(0, "h")][:, 1] for s in snaps]))


def test_unit_param_norms_against_torch():
    lstm = torch.nn.LSTM(3, 4, num_layers=2, dtype=torch.float64)
    params = {
        k.replace("weight", "rnn.weight"): v.detach().numpy() for k, v in lstm.state_dict().items()
    }
    norms = unit_param_norms(params, "lstm", 2)
    for k in range(2):
        W_ih, W_hh = getattr(lstm, f"weight_ih_l{k}"), getattr(lstm, f"weight_hh_l{k}")
        for g, gate in enumerate("ifgo"):
            for u in range(4):
                want = torch.linalg.norm(torch.cat([W_ih[g * 4 + u], W_hh[g * 4 + u]]))
                assert norms[(k, gate)][u] == pytest.approx(want.item(), rel=1e-12)


def test_user_errors():
    a = np.zeros((3, 2))
    a[1, 1] = np.nan
    acts = Activations("rnn", ("a",), "aaa", {(0, "h"): a})
    f = Feature("x", np.array([0, 1, 2], np.float32), False)
    with pytest.raises(UserError, match="NaN or infinity"):
        score_units(acts, [f])
    with pytest.raises(UserError, match="no features"):
        score_units(acts, [])


def test_histogram_scores_within_their_bound_and_fallback_outside_a_kinds_range(planted):
    """An "h" that is not tanh-bounded cannot go through atanh: it is binned raw instead."""
    acts, feats = planted
    rng = np.random.default_rng(8)
    wide = acts.arrays[(0, "c")] * 3 + rng.standard_normal(acts.arrays[(0, "c")].shape)
    a = Activations("lstm", acts.vocab, acts.text, {(0, "h"): wide})
    exact, hist = score_units(a, feats, auc="exact"), score_units(a, feats, auc="histogram")
    assert hist.auc_method == "histogram" and 0 < hist.score_error < 0.05
    assert np.abs(hist.score - exact.score).max() <= hist.score_error + 1e-12
    assert np.array_equal(hist.pearson, exact.pearson)
