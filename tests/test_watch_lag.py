"""watch's lag matrix and verdict for the models people debug long-range memory with: a
classifier that reads h_n (and c_n), or only the last output step.

Oracle: the same torch module stepped one step at a time in float64 with ``retain_grad`` on
every h_t — ‖dL/dh_t‖ over the batch. With one loss term (the last step) the lag matrix's
row T is that, and the verdict's per-step factor is the least-squares slope of its log.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from rnn_dissect import watch  # noqa: E402


def stepped_dh(rnn: nn.Module, x: torch.Tensor, head) -> np.ndarray:
    """(T,) ‖dL/dh_t‖ (Frobenius over batch and units), t = 1..T, by stepping ``rnn`` in torch:
    h_t and c_t are separate tensors, so h_t's gradient is the partial the lag matrix reads."""
    state, hs = None, []
    for t in range(x.shape[1]):
        _, state = rnn(x[:, t : t + 1], state)
        h = state[0] if isinstance(state, tuple) else state  # (1, B, H)
        h.retain_grad()
        hs.append(h)
    head(hs[-1][-1], state).backward()  # one layer: the last output is h_T itself
    return np.array([float(h.grad.norm()) for h in hs])


@pytest.mark.parametrize("reads", ["h_n and c_n", "last output"])
def test_many_to_one_lag_row_and_verdict_match_torch(reads):
    torch.manual_seed(3)
    B, T, n_in, H = 3, 14, 4, 6
    cell = nn.LSTM if reads == "h_n and c_n" else nn.GRU
    rnn = cell(n_in, H, batch_first=True).double()
    W = torch.randn(2, 2 * H if reads == "h_n and c_n" else H, dtype=torch.float64)
    x = torch.randn(B, T, n_in, dtype=torch.float64)

    def head(out_last, state):  # a scalar loss read from the end of the sequence only
        if reads == "h_n and c_n":
            h_n, c_n = state
            feats = torch.cat([h_n[-1], c_n[-1]], 1)  # (B, 2H)
        else:
            feats = out_last  # (B, H)
        return (torch.tanh(feats @ W.T) ** 2).sum()

    with watch(rnn) as w:
        out, state = rnn(x)
        head(out[:, -1], state).backward()
    d = w.dissection()
    assert d.check(rnn) < 1e-10
    flow = d.part().dissection.flow.layers[0]
    rnn.zero_grad()
    ref = stepped_dh(rnn, x, head)  # (T,)

    # row T of the lag matrix = ‖∂L/∂h_t‖: the whole gradient (h_n's and c_n's included)
    np.testing.assert_allclose(flow.lag[T - 1], ref, rtol=1e-9)
    assert np.all(flow.lag[: T - 1] == 0)  # no other step feeds the loss

    v = flow.verdict
    assert (v.loss_terms, v.pairs, v.looked_back) == (1, T - 1, T - 1)
    gamma = float(np.exp(np.polyfit(np.arange(T), np.log(ref[::-1]), 1)[0]))  # slope per lag
    assert v.decay_per_step == pytest.approx(gamma, rel=1e-9)
    assert v.label == ("vanishing" if gamma < 0.95 else "stable" if gamma <= 1.05 else "exploding")
    # the evidence is in the words: the factor, the rows left out, the farthest step's ratio
    assert f"×{gamma:.3g} per step" in v.reason
    assert f"({T - 1} loss terms that send no gradient left out)" in v.reason
    assert f"{T - 1} steps back it is {ref[0] / ref.max():.2g} of it" in v.reason
    top = int(np.argmax(ref[::-1]))
    below = np.nonzero(ref[::-1][top:] < 1e-3 * ref.max())[0]
    assert v.reach == (top + int(below[0]) if below.size else None)


def test_neurons_feature_with_nan_is_scored_on_its_defined_steps_only():
    """ "Which unit holds the key at the query step?": a feature defined at the last step only
    (NaN elsewhere), beside one defined everywhere. Oracle: 2·AUC − 1 from ranks and Pearson
    r computed here on the replayed units' values (the states are checked against torch's)."""
    torch.manual_seed(1)
    B, T = 12, 9
    rnn = nn.LSTM(3, 4, batch_first=True).double()
    x = torch.randn(B, T, 3, dtype=torch.float64)
    with watch(rnn) as w:
        out, _ = rnn(x)
        out[:, -1].sum().backward()
    d = w.dissection()
    key = np.full((B, T), np.nan)
    key[:, -1] = (x[:, 0, 0] > 0).numpy()  # (B,) a bit seen at step 1, asked at step T
    x0 = x[..., 0].numpy()  # (B, T) defined everywhere
    s = d.neurons({"key": key, "x0": x0})
    assert s.features == ["key", "x0"] and s.boolean == [True, False]
    c_last = np.stack([d.sequence(b)[(0, 0)]["c"][-1] for b in range(B)])  # (B, H)
    np.testing.assert_allclose(  # the replay's states are torch's
        np.stack([d.sequence(b)[(0, 0)]["h"] for b in range(B)]), out.detach().numpy(), rtol=1e-12
    )
    y = key[:, -1] == 1

    def two_auc_minus_one(v):  # Mann–Whitney: P(v_pos > v_neg) + ½ P(tie), as 2·AUC − 1
        diff = v[y][:, None] - v[~y][None, :]
        return 2 * ((diff > 0).mean() + 0.5 * (diff == 0).mean()) - 1

    units = [(u.kind, u.unit) for u in s.units]
    for u in range(4):
        j = units.index(("c", u))
        assert s.score[0, j] == pytest.approx(two_auc_minus_one(c_last[:, u]), abs=1e-6)
        h_all = np.stack([d.sequence(b)[(0, 0)]["h"][:, u] for b in range(B)])  # (B, T)
        r = np.corrcoef(h_all.ravel(), x0.ravel())[0, 1]
        assert s.score[1, units.index(("h", u))] == pytest.approx(r, abs=1e-5)
    assert s.meta["rows"] == {"key": B, "x0": B * T}
    for bad, msg in ((np.full((B, T), np.nan), "NaN at every replayed step"),
                     (np.full((B, T), np.inf), "holds ±inf")):  # fmt: skip
        with pytest.raises(Exception, match=msg):
            d.neurons({"k": bad})
    with pytest.raises(Exception, match="pass at least one feature"):
        d.neurons({})
    # what print(s) shows: each feature's three best units, read back from ranking()
    lines = repr(s).splitlines()
    assert lines[0] == f"Scores: 2 features × {len(s.units)} units"
    for line, name in zip(lines[1:], ["key", "x0"], strict=True):
        shown = re.findall(r"l(\d+) ([a-z]+)(\d+) ([+-]\d\.\d{3})", line)
        want = [(str(r["layer"]), r["kind"], str(r["unit"]), f"{r['score']:+.3f}")
                for r in s.ranking(name, top=3)]  # fmt: skip
        assert line.split()[0] == name and shown == want


def test_a_gradient_that_stops_is_said_not_fitted():
    """Exact zeros (a ReLU that is off) have no logarithm: the factor is fitted on the other
    pairs and the zeros are counted in words. Hand-built lag: 0.5^ℓ for ℓ < 3, 0 beyond."""
    from rnn_dissect.bptt.verdict import verdict

    T = 12
    ell = np.subtract.outer(np.arange(T), np.arange(T))  # (T, T): t' − t
    ok = ell >= 0
    lag = np.where(ok & (ell < 3), 0.5 ** np.maximum(ell, 0), 0.0)
    v = verdict(lag, ok, np.zeros(T, int), None)
    zeros = sum(T - k for k in range(3, T))  # 45 pairs at lags 3..11
    assert (v.label, v.pairs, v.reach) == ("vanishing", 66, 3)
    assert v.decay_per_step == pytest.approx(0.5, rel=1e-12)
    assert "×0.5 per step — a log-linear fit over 66 (t', t) pairs" in v.reason
    assert (
        f"it is exactly 0 in {zeros} of the pairs (the nearest 3 steps back): the gradient stops"
        in (v.reason)
    )
    assert v.reason.endswith("11 steps back it is exactly 0")
    dead = verdict(np.where(ell == 0, 1.0, 0.0), ok, np.zeros(T, int), None)  # stops at once
    assert (dead.label, dead.decay_per_step) == ("vanishing", 0.0)
    assert "is exactly 0 in 66 of the pairs (the nearest 1 step back)" in dead.reason


def test_relu_rnn_that_stops_matches_torch():
    rng = np.random.default_rng(3)  # weights from numpy: the same whatever torch's state
    rnn = nn.RNN(3, 4, nonlinearity="relu", batch_first=True).double()
    with torch.no_grad():
        for p in rnn.parameters():
            p.copy_(torch.from_numpy(rng.uniform(-0.6, 0.6, tuple(p.shape))))
        rnn.bias_ih_l0 -= 0.3  # units off at some steps: there the gradient stops
    x = torch.from_numpy(rng.normal(size=(1, 16, 3)))
    with watch(rnn) as w:
        out, _ = rnn(x)
        out.sum().backward()  # a loss term at every step
    lf = w.dissection().part().dissection.flow.layers[0]
    rnn.zero_grad()
    ref = stepped_dh(rnn, x, lambda h_last, state: h_last.sum())  # (T,) L_T's row
    np.testing.assert_array_equal(lf.lag[-1] == 0, ref == 0)  # the same exact zeros as torch
    np.testing.assert_allclose(lf.lag[-1], ref, rtol=1e-12)
    v = lf.verdict
    assert (ref == 0).any() and (ref[:-1] > 0).any()  # it passes some steps, stops at others
    assert "exactly 0 in" in v.reason and "(left out of the fit)" in v.reason
    assert 0.05 < v.decay_per_step < 0.95  # a factor, not the log(tiny) artefact (~1e-5)


def test_windowed_verdict_names_what_its_last_row_holds():
    """window=(a, b) with b < T: the window's last row holds the gradient reaching h_b from
    the loss read at b and from the steps after the window (the end seed), not L_T's own;
    the sentence says so, and its numbers are torch's ‖dL/dh_t‖ over the window's steps."""
    torch.manual_seed(5)
    B, T, a, b = 3, 16, 1, 13
    rnn = nn.GRU(4, 5, batch_first=True).double()
    W = torch.randn(2, 5, dtype=torch.float64)
    x = torch.randn(B, T, 4, dtype=torch.float64)

    def head(out_last, state):
        return (torch.tanh(out_last @ W.T) ** 2).sum()

    with watch(rnn) as w:
        out, state = rnn(x)
        head(out[:, -1], state).backward()
    d = w.dissection(window=(a, b))
    rnn.zero_grad()
    ref = stepped_dh(rnn, x, head)[a:b]  # (b − a,) positions a..b−1: what the window sees
    lf = d.part().dissection.flow.layers[0]
    np.testing.assert_allclose(lf.lag[-1], ref, rtol=1e-9)
    v = lf.verdict
    gamma = float(np.exp(np.polyfit(np.arange(b - a), np.log(ref[::-1]), 1)[0]))
    assert v.decay_per_step == pytest.approx(gamma, rel=1e-9)
    said = (
        f"the gradient reaching h at position {b - 1} (the window's last step) from the loss "
        f"read there and from after the window (positions {b}…{T - 1})"
    )
    assert v.last_row == said
    assert "L_T's own gradient" not in v.reason
    m = re.search(r"; (.*) (falls below 0\.001 of its largest value (\d+) steps? back"
                  r"|stays above 0\.001 of its largest value as far as measured)", v.reason)  # fmt: skip
    assert m and m.group(1) == said, v.reason
    assert f"×{gamma:.3g} per step" in v.reason
    assert v.reason.endswith(f"; {b - a - 1} steps back it is {ref[0] / ref.max():.2g} of it")
    # the JSON the explorer reads carries the same words
    assert d.part().dissection.to_dict()["flow"]["layers"][0]["verdict"]["last_row"] == said
    # the whole replay's last row is L_T's own (torch's dL/dh_n there, here 0)
    assert w.dissection().part().dissection.flow.layers[0].verdict.last_row == "L_T's own gradient"


@pytest.mark.parametrize(
    "reads, subject",
    [("out", "L_T's own gradient"), ("h", "the gradient at the last step (h_n's included)"),
     ("hc", "the gradient at the last step (h_n's and c_n's included)")],
)  # fmt: skip
def test_the_verdict_names_what_row_T_holds(reads, subject):
    """Row T of a model that reads h_n (c_n) holds their gradient too: the sentence says so."""
    torch.manual_seed(0)
    m = nn.LSTM(3, 6, batch_first=True).double()
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    with watch(m) as w:
        out, (h, c) = m(x)
        loss = out.sum() if reads == "out" else h.sum() + (c.sum() if "c" in reads else 0)
        loss.backward()
    v = w.dissection().part().dissection.flow.layers[0].verdict
    assert v.last_row == subject and f"; {subject} " in v.reason
