"""Every ```python block of the README runs as written (each in a fresh namespace, in an empty
directory): the examples a reader copies are the ones the suite checks. Blocks assert their
own results (e.g. the min-char-rnn mapping: gradients = T × ours, one bias gradient)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_python_block_runs(i, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = compile(BLOCKS[i], f"README.md python block {i + 1}", "exec")
    exec(code, {"__name__": f"readme_block_{i + 1}"})
