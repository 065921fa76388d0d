"""oneMKL GEMMs of the float32 training kernels (kernels/blas.py): every layout against a
float64 product, the packed weight, the fall-backs, the kernels with and without it, and
the order in which torch and MKL are loaded into one process."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_kernels import assert_same_run, check, make, rel

from rnn_dissect.train.kernels import KERNELS, Backend, blas

X86_64 = platform.machine().lower() in ("x86_64", "amd64")  # where oneMKL's wheels exist
pytestmark = pytest.mark.skipif(
    not X86_64 and not blas.available(),
    reason=f"oneMKL's wheels (mkl, intel-openmp) exist for x86-64 only, not {platform.machine()}",
)
MKL = Backend("mkl", fused=False)  # only the GEMMs differ from the plain-numpy reference


def test_mkl_is_there():
    """On x86-64 the test install has the ``mkl`` extra, so both GEMM paths are exercised."""
    assert blas.available()
    assert MKL.mkl(np.float32) and not MKL.mkl(np.float64)
    assert not Backend().mkl(np.float32)


def rel64(got: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return rel(got, a.astype(np.float64) @ b.astype(np.float64))


def layouts(m: int, k: int, n: int, rng: np.random.Generator):
    """(a, b) pairs in every layout the kernels pass: C arrays, transposes, row slices of
    wider buffers (lda > k), as float32."""
    for ta in (False, True):
        for tb in (False, True):
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
            yield (a.T if ta else a), (b.T if tb else b)
    wide = rng.standard_normal((m, k + 9)).astype(np.float32)  # hcat's [h | onehot] rows
    yield wide[:, :k], rng.standard_normal((k, n)).astype(np.float32)


@pytest.mark.parametrize("shape", [(64, 512, 512), (7, 33, 5), (1, 20, 3), (300, 1, 40)])
def test_matmul_matches_float64_in_every_layout(shape):
    rng = np.random.default_rng(0)
    calls = 0
    real = blas._lib.cblas_sgemm

    def spy(*args):
        nonlocal calls
        calls += 1
        return real(*args)

    blas._lib.cblas_sgemm = spy
    try:
        n_cases = 0
        for a, b in layouts(*shape, rng):
            got = blas.matmul(a, b)
            assert got.dtype == np.float32 and got.shape == (shape[0], shape[2])
            assert rel64(got, a, b) <= 1e-5 * np.sqrt(shape[1])
            wide = np.full((shape[0], shape[2] + 4), 7.0, np.float32)
            blas.matmul(a, b, out=wide[:, 2 : 2 + shape[2]])  # out with ldc > n
            assert np.array_equal(wide[:, 2 : 2 + shape[2]], got)
            assert (wide[:, :2] == 7).all() and (wide[:, 2 + shape[2] :] == 7).all()
            n_cases += 2
    finally:
        blas._lib.cblas_sgemm = real
    assert calls == n_cases  # every case above went to MKL, none fell back


def test_fixed_packs_once_and_matches():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((96, 160)).astype(np.float32)
    mm = blas.fixed(W)
    assert isinstance(mm, blas.Fixed)
    buf = rng.standard_normal((5, 20, 96 + 3)).astype(np.float32)  # (T, B, H+E) like hcat
    out = np.empty((20, 160), np.float32)
    for t in range(5):
        mm(buf[t, :, :96], out)
        assert rel64(out, buf[t, :, :96], W) <= 1e-5
    half = np.empty((10, 160), np.float32)
    mm(buf[0, :10, :96], half)  # another row count: packed again for it
    assert rel64(half, buf[0, :10, :96], W) <= 1e-5
    assert sorted(mm._packed) == [10, 20]
    np.testing.assert_array_equal(half, blas.matmul(buf[0, :10, :96], W))


def test_results_do_not_depend_on_alignment():
    """MKL picks kernels by alignment; its results must not change with it, or training
    would not be reproducible (and resume would not be bit-identical)."""
    rng = np.random.default_rng(2)
    a0 = rng.standard_normal((64, 512)).astype(np.float32)
    b0 = rng.standard_normal((512, 640)).astype(np.float32)
    ref = blas.matmul(a0, b0)
    for off in range(1, 16):
        a = np.empty(a0.size + 16, np.float32)[off : off + a0.size].reshape(a0.shape)
        b = np.empty(b0.size + 16, np.float32)[off : off + b0.size].reshape(b0.shape)
        a[...], b[...] = a0, b0
        assert np.array_equal(blas.matmul(a, b), ref)
        out = np.empty((64, 640), np.float32)
        blas.fixed(b)(a, out)
        assert np.array_equal(out, blas.fixed(b0)(a0, np.empty_like(out)))


def test_falls_back_to_numpy():
    rng = np.random.default_rng(3)
    a64 = rng.standard_normal((8, 6))
    b64 = rng.standard_normal((6, 4))
    assert np.array_equal(blas.matmul(a64, b64), np.matmul(a64, b64))  # float64: numpy
    a = rng.standard_normal((8, 12)).astype(np.float32)[:, ::2]  # no BLAS layout
    b = b64.astype(np.float32)
    assert np.array_equal(blas.matmul(a, b), np.matmul(a, b))
    assert not isinstance(blas.fixed(b64), blas.Fixed)
    assert not isinstance(Backend().fixed(b), blas.Fixed)  # the numpy backend never packs
    assert isinstance(MKL.fixed(b), blas.Fixed) and not isinstance(MKL.fixed(b64), blas.Fixed)
    a = np.ascontiguousarray(a)
    assert np.array_equal(Backend().matmul(a, b), np.matmul(a, b))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_kernels_with_mkl_match_kernels_without(cell, monkeypatch):
    """Same loss, gradients, state and logits with MKL's GEMMs as with numpy's, to float32
    rounding; the packed per-step product really ran (4 loops forward, 2 backward)."""
    params, x, y, state0 = make(cell, 11, 40, 2, 6, 25, seed=5, dtype=np.float32)
    made: list[str] = []
    real_fixed = blas.fixed

    def spy(b, ws=None, tag=""):
        mm = real_fixed(b, ws, tag)
        made.append("Fixed" if isinstance(mm, blas.Fixed) else mm.__name__)
        return mm

    monkeypatch.setattr(blas, "fixed", spy)
    runs = {}
    for on in (False, True):
        bk = MKL if on else Backend()
        made.clear()
        loss, grads, state = KERNELS[cell].forward_backward(
            params, x, y, state0, 0.25, np.random.default_rng(2), backend=bk
        )
        logits, _ = KERNELS[cell].forward(params, x, state0, backend=bk)
        runs[on] = (loss, grads, state, logits)
        assert made == ["Fixed"] * 6 if on else not made
    assert_same_run(runs[True], runs[False])


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_kernels_with_mkl_close_to_torch_float64(cell):
    params, x, y, state0 = make(cell, 20, 48, 2, 6, 30, seed=6, dtype=np.float32)
    check(cell, params, x, y, state0, tol=2e-5, backend=MKL)


LOAD_ORDER = """
import ctypes, sys
import numpy as np
if sys.argv[1] == "torch-first":
    import torch
from rnn_dissect.train.kernels import blas

def worst(torch=None):
    rng = np.random.default_rng(0)
    err = 0.0
    for m, k, n in [(64, 512, 2048), (64, 2048, 512), (577, 6400, 512)]:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        ref = a.astype(np.float64) @ b.astype(np.float64)
        got = [blas.matmul(a, b), blas.fixed(b)(a, np.empty((m, n), np.float32))]
        if torch is not None:
            got.append((torch.from_numpy(a) @ torch.from_numpy(b)).numpy())
        for g in got:
            err = max(err, float(np.abs(g - ref).max() / np.abs(ref).max()))
    return err

assert blas.available()
if sys.argv[1] == "torch-first":
    print(worst(torch))
else:  # MKL alone (its threads from libiomp5), then torch loaded after it
    assert hasattr(ctypes.CDLL(None), "GOMP_parallel")  # libiomp5's, loaded by blas
    alone = worst()
    import torch
    print(max(alone, worst(torch)))
"""


@pytest.mark.parametrize("order", ["torch-first", "mkl-first"])
def test_torch_and_mkl_in_one_process(order):
    """torch links its own MKL and OpenMP. MKL alone, and with torch loaded either way
    round, both must compute correct products on all threads (with MKL's Intel threading
    layer and torch first, every MKL thread computed the same block: errors of order 1)."""
    code = textwrap.dedent(LOAD_ORDER)
    run = subprocess.run(
        [sys.executable, "-c", code, order], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert float(run.stdout) <= 1e-5
