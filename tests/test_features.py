"""Hypothesis features against hand-derived arrays and a char-by-char reference lexer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_dissect.errors import UserError
from rnn_dissect.neurons.features import (
    BUILTIN,
    builtin_features,
    callable_feature,
    python_lexer,
    regex_feature,
)


def digits(a: np.ndarray) -> str:
    return "".join(str(int(v)) for v in a)


def feat(name: str, text: str) -> str:
    return digits(BUILTIN[name][0](text))


@pytest.mark.parametrize(
    "text, quote, comment",
    [
        # escaped quotes of the same kind stay inside; the closing quote itself is 0
        ("s = 'a\\'b' + \"c\\\"d\"\n", "00001111100001111100", "0" * 20),
        # a triple-quoted string spans lines and hides ' and #; the comment hides '
        ('x = """a\'#\nb"""  # it\'s\ny', "0000111111111100000000000", "0" * 17 + "111111" + "00"),
        # an apostrophe opens a string that the newline closes
        ("don't\nx'y'", "0001100110", "0" * 10),
        # backslash-newline continues a single-quoted string
        ("'a\\\nb'c", "1111100", "0" * 7),
        # quotes in a comment are not strings; the comment ends at the newline
        ("# \"no\n'yes'", "00000011110", "11111000000"),
        ("\"\"''", "1010", "0000"),  # two empty strings
        ("''''''x", "1111100", "0" * 7),  # an empty triple-quoted string
        ('"a\\\\"b"', "1111001", "0" * 7),  # an escaped backslash does not escape the quote
        ('"open', "11111", "00000"),  # unterminated at the end of the text
        ("", "", ""),
    ],
)
def test_in_quote_and_in_comment_by_hand(text, quote, comment):
    assert len(quote) == len(text) == len(comment)
    q, c = python_lexer(text)
    assert digits(q) == quote
    assert digits(c) == comment


def test_bracket_depth_nested_and_clamped():
    assert feat("bracket_depth", "f(a[b{c}d]e)") == "011223322110"
    assert feat("bracket_depth", ")(]{}}(") == "0101001"  # a stray closer never goes below 0


def test_line_features_by_hand():
    text = "ab\n  c\n\n\tx y\n"
    assert feat("line_position", text) == "0120123001234"
    assert feat("line_start", text) == "1001000110000"
    assert feat("indent", text) == "0001222011111"  # leading blanks read so far; tab = 1
    assert feat("word_position", text) == "1200010001010"
    assert feat("word_position", "foo_1 2x") == "12345012"


def test_character_classes_by_hand():
    text = "aZ 9_+é\t"
    assert feat("letter", text) == "11000010"
    assert feat("upper", text) == "01000000"
    assert feat("digit", text) == "00010000"
    assert feat("whitespace", text) == "00100001"
    assert feat("punct", text) == "00001100"  # _ is Pc, + is Sm


def test_builtin_features_names_order_and_flags():
    fs = builtin_features("x = (1)  # y\n")
    assert [f.name for f in fs] == [
        "in_quote", "bracket_depth", "line_position", "indent", "in_comment", "line_start",
        "whitespace", "letter", "digit", "punct", "upper", "word_position",
    ]  # fmt: skip
    numeric = {"bracket_depth", "line_position", "indent", "word_position"}
    assert all(f.boolean == (f.name not in numeric) for f in fs)
    assert all(f.values.dtype == np.float32 and f.values.shape == (13,) for f in fs)
    assert [f.name for f in builtin_features("ab", ["letter", "in_quote"])] == [
        "in_quote",
        "letter",
    ]
    with pytest.raises(UserError, match="unknown feature 'quotes'"):
        builtin_features("ab", ["quotes"])


def test_regex_and_callable_features():
    assert digits(regex_feature("num", r"\d+", "a12 b3").values) == "011001"
    assert digits(regex_feature("xs", "x*", "axxb").values) == "0110"  # empty matches ignored
    f = callable_feature("a", lambda t: [ch == "a" for ch in t], "banana")
    assert f.boolean and digits(f.values) == "010101"
    g = callable_feature("len", lambda t: np.arange(len(t)), "abc")
    assert not g.boolean and g.values.tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(UserError, match="bad regular expression"):
        regex_feature("bad", "(", "abc")
    with pytest.raises(UserError, match=r"shape \(2,\)"):
        callable_feature("short", lambda t: [0, 1], "abc")
    with pytest.raises(UserError, match="marked boolean"):
        callable_feature("b", lambda t: [0, 2, 1], "abc", boolean=True)


# ---- independent char-by-char references, compared on random texts ----


def ref_lexer(t: str) -> tuple[list[int], list[int]]:
    n = len(t)
    q, c = [0] * n, [0] * n
    i, delim, comment = 0, "", False
    while i < n:
        ch = t[i]
        if comment:
            comment = ch != "\n"
            c[i] = int(comment)
            i += 1
        elif not delim:
            if ch in "'\"":
                delim = ch * 3 if t[i : i + 3] == ch * 3 else ch
                for k in range(len(delim)):
                    q[i + k] = 1
                i += len(delim)
            else:
                comment = ch == "#"
                c[i] = int(comment)
                i += 1
        elif ch == "\\":
            q[i : i + 2] = [1] * len(q[i : i + 2])
            i += 2
        elif ch == "\n" and len(delim) == 1:
            delim, i = "", i + 1
        elif t.startswith(delim, i):
            q[i : i + len(delim) - 1] = [1] * (len(delim) - 1)
            delim, i = "", i + len(delim)
        else:
            q[i] = 1
            i += 1
    return q, c


def ref_numeric(t: str) -> dict[str, list[int]]:
    depth, col, lead, wp = [], [], [], []
    d = c = ind = w = 0
    in_lead = True
    for ch in t:
        d = max(0, d + (ch in "([{") - (ch in ")]}"))
        depth.append(d)
        col.append(c)
        if in_lead and ch in " \t":
            ind += 1
        else:
            in_lead = False
        lead.append(ind)
        w = w + 1 if (ch.isalnum() or ch == "_") else 0
        wp.append(w)
        c += 1
        if ch == "\n":
            c, ind, in_lead = 0, 0, True
    return {"bracket_depth": depth, "line_position": col, "indent": lead, "word_position": wp}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab '\"#\\\n\t([{}])_1", max_size=60))
def test_features_match_char_by_char_references(text):
    q, c = python_lexer(text)
    rq, rc = ref_lexer(text)
    assert q.tolist() == rq and c.tolist() == rc
    for name, ref in ref_numeric(text).items():
        assert BUILTIN[name][0](text).tolist() == ref, name
