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


def test_the_readme_file_map_lists_every_module_and_no_other():
    """ "Layout: one folder per layer" names each module of each folder it covers (drift check)."""

    root = Path(__file__).resolve().parents[1]
    text = (root / "README.md").read_text(encoding="utf-8")
    section = text[
        text.index("## Layout: one folder per layer") : text.index("## How a change flows")
    ]
    listed, folder = set(), None
    for line in section.splitlines():
        if m := re.match(r"`rnn_dissect/([\w/]+)/` — ", line):
            folder = m.group(1)
        elif (m := re.match(r"- `(\w+\.py)` — \S", line)) and folder:
            listed.add(f"{folder}/{m.group(1)}")
    folders = {name.rsplit("/", 1)[0] for name in listed}
    assert {"autograd", "bptt", "nets", "train/kernels", "watch", "web", "cli"} <= folders
    actual = {
        str(f.relative_to(root / "rnn_dissect"))
        for d in folders
        for f in (root / "rnn_dissect" / d).glob("*.py")
        if f.name != "__init__.py"
    }
    assert listed == actual, (sorted(actual - listed), sorted(listed - actual))
