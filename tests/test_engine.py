"""The engine against PyTorch autograd (float64) and central differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_dissect import Graph, Kind
from rnn_dissect.autograd.gradcheck import gradcheck

torch.set_default_dtype(torch.float64)
TOL = 1e-10


def rel(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| relative to the larger tensor's largest entry — or to 1e-4 when both are
    smaller: a gradient that cancels down to ~1e-8 from O(1) terms carries their roundoff
    (a few 1e-16 absolute), which no order of summation avoids (hypothesis found 3e-9 and
    1.6e-10 relative to a 1e-6 floor: 3e-16 and 1.6e-16 absolute). With TOL = 1e-10 the
    floor still asks for agreement to 1e-14 absolute."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0), 1e-4)
    return float(np.abs(a - b).max(initial=0.0) / scale)


def run_both(build, arrays: dict[str, np.ndarray], ints: dict[str, np.ndarray] | None = None):
    """Build the same expression with our graph and with torch; return values and grads."""
    ints = ints or {}
    g = Graph()
    ours = {k: g.param(v, name=k) for k, v in arrays.items()}
    ours.update({k: g.target(v, name=k) for k, v in ints.items()})
    out = build(ours, "ours")
    g.backward(out)
    theirs = {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}
    theirs.update({k: torch.tensor(v) for k, v in ints.items()})
    tout = build(theirs, "torch")
    tout.backward()
    for k in arrays:
        assert ours[k].grad is not None, k
        assert rel(ours[k].grad, theirs[k].grad.numpy()) <= TOL, k
    assert rel(out.value, tout.detach().numpy()) <= TOL
    return g, ours


def _op(name, *args, **kw):
    """Dispatch one op to our graph (Node args) or torch (Tensor args)."""
    if isinstance(args[0], torch.Tensor):
        T = torch.nn.functional
        return {
            "linear": lambda x, w, b=None: T.linear(x, w, b),
            "lookup": lambda w, i, axis=0: w[i] if axis == 0 else w[:, i].movedim(0, -1),
            "softmax_ce": lambda z, y, reduction="mean": T.cross_entropy(z, y, reduction=reduction),
            "bce": lambda p, y, reduction="mean": T.binary_cross_entropy(p, y, reduction=reduction),
            "bce_logits": lambda z, y, reduction="mean": T.binary_cross_entropy_with_logits(
                z, y, reduction=reduction
            ),
            "concat": lambda *xs, axis=-1: torch.cat(xs, dim=axis),
            "addn": lambda *xs: sum(xs[1:], xs[0]),
        }[name](*args, **kw)
    return args[0].graph.apply(name, *args, **kw)


RNG = np.random.default_rng(1234)


def rand(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape)


# ----------------------------------------------------------------------------- every op
@pytest.mark.parametrize(
    "name,fn,arrays",
    [
        ("add-broadcast", lambda v, _: (v["a"] + v["b"]).sum(), {"a": rand(3, 4), "b": rand(4)}),
        (
            "sub",
            lambda v, _: ((v["a"] - v["b"]) * v["a"]).sum(),
            {"a": rand(3, 4), "b": rand(3, 1)},
        ),
        ("mul", lambda v, _: (v["a"] * v["b"]).sum(), {"a": rand(2, 5), "b": rand(2, 5)}),
        ("rsub", lambda v, _: ((1 - v["a"]) * v["a"]).sum(), {"a": rand(4)}),
        ("neg-scalar", lambda v, _: (-v["a"] * 2.5 + 3.0).sum(), {"a": rand(4)}),
        (
            "matmul-mm",
            lambda v, _: (v["a"] @ v["b"]).tanh().sum(),
            {"a": rand(3, 4), "b": rand(4, 2)},
        ),
        ("matmul-mv", lambda v, _: (v["a"] @ v["b"]).sum(), {"a": rand(3, 4), "b": rand(4)}),
        ("matmul-vm", lambda v, _: (v["a"] @ v["b"]).sum(), {"a": rand(4), "b": rand(4, 2)}),
        ("matmul-vv", lambda v, _: (v["a"] @ v["b"]) * 1.0, {"a": rand(4), "b": rand(4)}),
        ("transpose", lambda v, _: (v["a"].T @ v["b"]).sum(), {"a": rand(4, 3), "b": rand(4, 2)}),
        (
            "linear",
            lambda v, _: _op("linear", v["x"], v["W"], v["b"]).sigmoid().sum(),
            {"x": rand(5, 3), "W": rand(4, 3), "b": rand(4)},
        ),
        (
            "linear-vec",
            lambda v, _: _op("linear", v["x"], v["W"]).tanh().sum(),
            {"x": rand(3), "W": rand(4, 3)},
        ),
        ("tanh", lambda v, _: v["a"].tanh().sum(), {"a": rand(3, 3) * 3}),
        ("sigmoid", lambda v, _: v["a"].sigmoid().sum(), {"a": rand(3, 3) * 30}),
        ("relu", lambda v, _: (v["a"].relu() * v["a"]).sum(), {"a": rand(3, 3)}),
        ("exp-log", lambda v, _: (v["a"].exp() + 1.0).log().sum(), {"a": rand(3, 3)}),
        (
            "sum-axis",
            lambda v, _: (v["a"].sum(axis=0) * v["b"]).sum(),
            {"a": rand(3, 4), "b": rand(4)},
        ),
        ("mean", lambda v, _: v["a"].mean(axis=1).tanh().mean(), {"a": rand(3, 4)}),
        ("slice", lambda v, _: (v["a"][:, 1:3] * v["a"][:, 0:2]).sum(), {"a": rand(3, 4)}),
        (
            "concat",
            lambda v, _: _op("concat", v["a"], v["b"], axis=1).tanh().sum(),
            {"a": rand(3, 2), "b": rand(3, 4)},
        ),
        (
            "addn",
            lambda v, _: _op("addn", v["a"], v["b"], v["a"]).tanh().sum(),
            {"a": rand(3, 2), "b": rand(3, 2)},
        ),
    ],
)
def test_op_matches_torch(name, fn, arrays):
    run_both(fn, arrays)


@pytest.mark.parametrize(
    "idx",
    [np.array([2, 0, 2, 1]), np.array([1]), np.array(2)],  # repeated (gradients accumulate);
    ids=["repeated", "one", "scalar"],  # one index: the backward's add.at-free column branch
)
def test_lookup_rows_and_columns_match_torch(idx):
    for axis in (0, 1):
        run_both(
            lambda v, _, axis=axis: (_op("lookup", v["W"], v["i"], axis=axis).tanh() * 1.5).sum(),
            {"W": rand(4, 3)},  # not square: a transposed gradient would not fit
            {"i": idx},
        )


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_losses_match_torch(reduction):
    y = np.array([0, 3, 3, 1, 2])
    run_both(
        lambda v, _: _op("softmax_ce", v["z"], v["y"], reduction=reduction),
        {"z": rand(5, 4) * 20},
        {"y": y},
    )
    p = 1 / (1 + np.exp(-rand(6)))
    t = (RNG.uniform(size=6) > 0.5).astype(np.float64)
    g = Graph()
    pn, tn = g.param(p), g.target(t)
    loss = g.apply("bce", pn, tn, reduction=reduction)
    g.backward(loss)
    tp = torch.tensor(p, requires_grad=True)
    tl = torch.nn.functional.binary_cross_entropy(tp, torch.tensor(t), reduction=reduction)
    tl.backward()
    assert rel(loss.value, tl.item()) <= TOL and rel(pn.grad, tp.grad.numpy()) <= TOL
    assert tn.grad is None  # a target carries no gradient
    run_both(
        lambda v, _: _op("bce_logits", v["z"], v["y"], reduction=reduction),
        {"z": rand(6) * 50, "y": RNG.uniform(size=6)},
    )


def test_softmax_ce_is_stable_for_huge_logits():
    g = Graph()
    z = g.param(np.array([[1000.0, 0.0, -1000.0]]))
    loss = g.apply("softmax_ce", z, g.target(np.array([0])))
    g.backward(loss)
    assert loss.value == 0.0 and np.isfinite(z.grad).all()


# ----------------------------------------------------------------------------- composed graphs
@settings(max_examples=40, deadline=None)
@given(
    B=st.integers(1, 4),
    n_in=st.integers(1, 5),
    n_hid=st.integers(1, 6),
    n_out=st.integers(2, 5),
    depth=st.integers(1, 4),
    acts=st.lists(st.sampled_from(["tanh", "sigmoid", "relu"]), min_size=4, max_size=4),
    seed=st.integers(0, 2**31 - 1),
)
def test_random_composed_graphs_match_torch(B, n_in, n_hid, n_out, depth, acts, seed):
    rng = np.random.default_rng(seed)
    arrays = {"x": rng.normal(size=(B, n_in))}
    sizes = [n_in] + [n_hid] * depth
    for k in range(depth):
        arrays[f"W{k}"] = rng.normal(size=(sizes[k + 1], sizes[k]))
        arrays[f"b{k}"] = rng.normal(size=sizes[k + 1])
    arrays["Wo"] = rng.normal(size=(n_out, n_hid))
    y = rng.integers(0, n_out, size=B)

    def build(v, which):
        h = v["x"]
        for k in range(depth):
            a = _op("linear", h, v[f"W{k}"], v[f"b{k}"])
            h = getattr(a, acts[k])() if which == "ours" else getattr(torch, acts[k])(a)
            # a residual product reuses h twice: gradients must accumulate across uses
            h = h * h + h if k % 2 else h
        return _op("softmax_ce", _op("linear", h, v["Wo"]), v["y"])

    run_both(build, arrays, {"y": y})


def test_central_differences_on_a_composed_graph():
    g = Graph()
    W = g.param(rand(4, 3), name="W")
    b = g.param(rand(4), name="b")
    h0 = g.state(rand(2, 4), name="h0")
    x = g.input(rand(2, 3), name="x")
    h = h0
    for _ in range(5):  # the same W, b reused five times, like an unrolled RNN
        h = (g.apply("linear", x, W, b) + h * 0.5).tanh()
    loss = g.apply("softmax_ce", h, g.target(np.array([1, 3])))
    checks = gradcheck(g, loss)
    assert [c.id for c in checks] == ["W", "b", "h0"]
    for c in checks:
        assert c.max_rel_error <= 1e-6, (c.id, c.max_rel_error)
    # and the check is able to fail: a wrong analytic gradient is caught
    bad = W.grad.copy()
    bad[0, 0] += 1e-3
    assert np.abs(bad - checks[0].numeric).max() > 1e-4


# ----------------------------------------------------------------------------- engine properties
def test_deep_chain_is_iterative_and_shared_weight_accumulates():
    # 100,000 nodes: a recursive topological sort would overflow the stack here.
    g = Graph()
    w = g.param(np.array(0.99999), name="w")
    h = g.state(np.array(1.0), name="h0")
    for _ in range(100_000):
        h = h * w
    h = h * 1.0
    g.backward(h)
    # h = w^n  ⇒  dh/dw = n w^{n-1}, summed over 100,000 uses of the same node
    n = 100_000
    assert len(g) > 100_000
    assert rel(w.grad, n * 0.99999 ** (n - 1)) <= 1e-9


def test_edge_grads_split_a_shared_weight_exactly():
    g = Graph()
    W = g.param(rand(3, 3), name="W")
    h = g.state(rand(3), name="h0")
    users = []
    for _ in range(6):
        h = g.apply("linear", h, W).tanh()
        users.append(h.parents[0])
    g.backward(h.sum())
    parts = [g.edge_grad(u, W) for u in users]
    assert np.abs(sum(parts) - W.grad).max() <= 1e-12
    assert all(np.abs(p).max() > 0 for p in parts)


def test_ids_are_stable_and_saved_tensors_are_tied_to_nodes():
    def build():
        g = Graph()
        x = g.input(np.ones(3), name="x")
        W = g.param(np.eye(3), id="W")
        z = g.apply("linear", x, W, id="z")
        y = z.tanh()
        return g, y

    (g1, y1), (g2, _) = build(), build()
    assert [n.id for n in g1] == [n.id for n in g2] == ["x", "W", "z", "tanh0"]
    assert g1.input(np.ones(1), name="x").id == "x.1"
    saved = {s.name: s for s in g1["z"].saved_tensors()}
    assert saved["x"].ref == "x" and saved["W"].ref == "W"  # reads parents, costs no extra memory
    (ys,) = y1.saved_tensors()
    assert ys.ref == "tanh0" and ys.nbytes == 24  # tanh keeps its own output: 3 float64
    with pytest.raises(ValueError, match="duplicate"):
        g1.param(np.ones(1), id="W")
    assert g1["W"].kind is Kind.PARAMETER


def test_replay_recomputes_after_a_leaf_changes():
    g = Graph()
    a = g.param(np.array([1.0, 2.0]))
    out = (a * a).sum()
    a.value = np.array([3.0, 4.0])
    g.forward()
    assert out.value == 25.0


def test_detach_blocks_gradient_but_passes_value():
    g = Graph()
    a = g.param(np.array([2.0]))
    d = g.apply("detach", a * 3.0)
    out = (d * a).sum()
    g.backward(out)
    assert d.value[0] == 6.0 and a.grad[0] == 6.0  # only the direct path: d(6·a)/da with d fixed
