"""``neurons --where PATTERN``: scores over the selected characters only.

Oracles, independent of the code under test: Pearson r and 2·AUC − 1 written out here in
plain Python (sums, and a count over every positive/negative pair, ties ½) on exactly the
selected rows; the selected positions recomputed by hand from the text; the page parsed.
"""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from planted import H, python_like_text
from planted import planted_lstm as make_planted

from rnn_dissect import cli
from rnn_dissect.errors import UserError
from rnn_dissect.neurons import ranking
from rnn_dissect.neurons.activations import Activations, load
from rnn_dissect.neurons.features import Feature, where_rows
from rnn_dissect.neurons.ranking import score_units
from rnn_dissect.weights import checkpoint
from rnn_dissect.weights.interop import from_torch

torch.set_num_threads(1)


def pearson(x: list[float], a: list[float]) -> float:
    n = len(x)
    mx, ma = sum(x) / n, sum(a) / n
    sxa = sum((p - mx) * (q - ma) for p, q in zip(x, a, strict=True))
    sxx = sum((p - mx) ** 2 for p in x)
    saa = sum((q - ma) ** 2 for q in a)
    return sxa / math.sqrt(sxx * saa)


def somers_d(y: list[bool], a: list[float]) -> float:
    """2·AUC − 1 by counting every (positive, negative) pair, ties ½."""
    pos = [v for v, t in zip(a, y, strict=True) if t]
    neg = [v for v, t in zip(a, y, strict=True) if not t]
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return 2 * wins / (len(pos) * len(neg)) - 1


def keyed_text(rng: np.random.Generator, lines: int) -> str:
    """Lines ``K<filler>|K``: the key K, 6 filler letters, ``|``, the key again."""
    return "".join(
        f"{k}{''.join(rng.choice(list('abcdef'), 6))}|{k}\n" for k in rng.choice(list("XYZ"), lines)
    )


def marks(pattern: str, text: str) -> str:
    return "".join("x" if w else "." for w in where_rows(pattern, text))


def test_where_rows_semantics():
    t = "aX|b cc|d |"
    assert marks(r"\|.", t) == "..xx...xx.."  # the whole match
    assert marks(r"\|(.)", t) == "...x....x.."  # group 1
    assert marks(r"(?:\|).", t) == "..xx...xx.."  # no capture
    assert marks(r"c*", t) == ".....xx...."  # empty: nothing
    with pytest.raises(UserError, match="matches no character"):
        where_rows(r"\|(Q)?.", t)  # group 1 never takes part
    with pytest.raises(UserError, match="not a regular expression"):
        where_rows("(", t)


@pytest.mark.parametrize("stream", [False, True])
def test_scores_equal_hand_formulas_on_the_selected_rows(tmp_path, monkeypatch, stream):
    rng = np.random.default_rng(5)
    text = keyed_text(rng, 150)  # 1,500 characters: several streamed blocks of 256 rows
    N = len(text)
    rows = where_rows(r"\|(.)", text)  # the key after each |
    key = np.array([ch == "X" for ch in text], np.float32)
    # unit 0 holds "X" only at the query steps (noise elsewhere), unit 1 is noise
    a = rng.uniform(-0.9, 0.9, (N, 3)).astype(np.float32)  # (N, 3)
    a[rows, 0] = np.where(key[rows] > 0, 0.5, -0.5) + rng.uniform(-0.3, 0.3, rows.sum())
    a[:, 2] = np.round(a[:, 2], 1)  # ties, which the pair count scores ½
    num = rng.normal(size=N).astype(np.float32)
    num[rows] += 2 * a[rows, 1]  # a numeric feature tied to unit 1 at the query steps
    acts = Activations("rnn", tuple(sorted(set(text))), text, {(0, "h"): a})
    if stream:
        acts = acts.save(tmp_path / "acts")
        assert isinstance(acts.arrays[(0, "h")], np.memmap)
        # blocks of 7 rows: most hold no selected row (one in 10 is), some hold one
        monkeypatch.setattr(ranking, "block_rows", lambda H: 7)
    feats = [Feature("keyX", key, True), Feature("num", num, False)]
    s = score_units(acts, feats, rows=rows)
    kept = [j for j in range(N) if text[j - 1 : j] == "|"]  # by hand: right after a |
    assert np.flatnonzero(rows).tolist() == kept and s.meta["scored_chars"] == len(kept) == 150
    for u in range(3):
        col = [float(a[j, u]) for j in kept]
        assert s.score[0, u] == pytest.approx(somers_d([key[j] > 0 for j in kept], col), abs=1e-12)
        assert s.score[1, u] == pytest.approx(pearson([float(num[j]) for j in kept], col), abs=1e-9)
    assert s.score[0, 0] == 1.0 and abs(score_units(acts, feats).score[0, 0]) < 0.5
    assert s.auc_method == "exact"
    # the histogram path (long texts) on the same rows: within its own error bound
    h = score_units(acts, feats, rows=rows, exact_max_n=10)
    assert h.auc_method == "histogram"
    np.testing.assert_allclose(h.score[0], s.score[0], atol=h.score_error + 1e-12)
    np.testing.assert_allclose(h.pearson, s.pearson, atol=1e-9)


def test_a_feature_constant_on_the_selected_rows_ranks_nothing():
    text = "a|b c|d e|f"
    acts = Activations("rnn", tuple(sorted(set(text))), text, {(0, "h"): np.eye(len(text))[:, :3]})
    letters = Feature("letter", np.array([c.isalpha() for c in text], np.float32), True)
    s = score_units(acts, [letters], rows=where_rows(r"\|(.)", text))
    assert s.constant == [True] and s.ranking("letter") == []


class Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    d = tmp_path_factory.mktemp("planted")
    text = python_like_text(np.random.default_rng(3), n_lines=60)
    vocab = tuple(sorted(set(text)))
    model = from_torch(
        make_planted(vocab), torch.nn.Linear(H, len(vocab), dtype=torch.float64), vocab
    )
    ckpt = d / "planted.safetensors"
    checkpoint.save(model, ckpt)
    f = d / "text.py"
    f.write_text(text, encoding="utf-8")
    return ckpt, f, text


def neurons(capsys, *args: object) -> tuple[int, str, str]:
    rc = cli.main(["neurons", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_where_scores_json_and_page(planted, tmp_path, capsys):
    ckpt, f, text = planted
    out = tmp_path / "n"
    pattern = r'"(\w)'  # the first character inside a string
    rc, stdout, err = neurons(
        capsys, ckpt, "--text", f, "--out", out, "--where", pattern, "--top", 100,
        "--regex", "b=b", "--keep-activations",
    )  # fmt: skip
    assert rc == 0, err
    kept = [j for j in range(1, len(text)) if text[j - 1] == '"' and re.match(r"\w", text[j])]
    assert len(kept) > 10
    doc = json.loads((out / "neurons.json").read_text())
    w = doc["where"]
    assert (w["pattern"], w["span"], w["scored_chars"], w["n_chars"]) == (
        pattern,
        "group 1",
        len(kept),
        len(text),
    )
    assert doc["n_chars"] == len(text) and doc["scored_chars"] == len(kept)
    assert f"scores computed on {len(kept):,} of {len(text):,} characters" in w["statement"]
    assert w["statement"] in stdout

    acts = load(out / "activations")
    y = [text[j] == "b" for j in kept]
    for r in doc["features"]["b"][:5]:  # the boolean --regex feature, by hand on the rows
        col = acts.arrays[(r["layer"], r["kind"])][:, r["unit"]]
        assert r["score"] == pytest.approx(somers_d(y, [float(col[j]) for j in kept]), abs=2e-6)
    x = [float(len(text[: j + 1].rsplit("\n", 1)[-1]) - 1) for j in kept]  # line_position
    for r in doc["features"]["line_position"][:5]:
        col = acts.arrays[(r["layer"], r["kind"])][:, r["unit"]]
        assert r["score"] == pytest.approx(pearson(x, [float(col[j]) for j in kept]), abs=2e-6)

    page = Text()
    page.feed((out / "heatmaps.html").read_text(encoding="utf-8"))
    said = re.search(r"Scores computed on ([\d,]+) of ([\d,]+) characters: those covered by a "
                     r"match of --where '(.*?)' \(its first group's span\)", "".join(page.parts))  # fmt: skip
    assert said, "the page does not state the --where rows"
    assert said.groups() == (f"{len(kept):,}", f"{len(text):,}", pattern)  # as typed in a shell


@pytest.mark.parametrize(
    ("pattern", "needle"),
    [("(", "is not a regular expression"), ("@@@", "matches no character of the text"),
     ("x*(@)?", "matches no character")],
)  # fmt: skip
def test_cli_bad_where_is_one_line_exit_2_nothing_written(
    planted, tmp_path, capsys, pattern, needle
):
    ckpt, f, _ = planted
    out = tmp_path / "o"
    rc, stdout, err = neurons(capsys, ckpt, "--text", f, "--out", out, "--where", pattern)
    assert rc == 2 and stdout == ""
    assert re.fullmatch(r"error: [^\n]+\n", err) and needle in err, err
    assert not out.exists()
