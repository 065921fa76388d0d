"""Session-wide test settings: the measured GEMM choice (rnn_dissect.train.kernels.choice)
is remembered in a temporary cache directory, never in the user's ~/.cache; and commands use
numpy's GEMMs unless a test asks for the measured choice (``monkeypatch.delenv
("RNN_DISSECT_GEMM")``): a choice measured on a busy machine is not remembered, so the
commands of a loaded test run would each measure again (slower, and each measurement runs the
kernels, which tests counting kernel calls would see)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    saved = {k: os.environ.get(k) for k in ("XDG_CACHE_HOME", "RNN_DISSECT_GEMM")}
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    os.environ["RNN_DISSECT_GEMM"] = "numpy"
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
