"""Hypothesis features over a text: what a unit might be tracking, one number per character.

Every feature is an (N,) float32 array aligned like the activations: entry j describes the
text *after reading character j*. Boolean features are 0/1 and scored by ROC-AUC, numeric
ones by correlation (:mod:`rnn_dissect.neurons.ranking`). The rules, exactly:

- ``in_quote``: inside a Python-like string literal. Outside strings and comments, ``'`` or
  ``"`` opens a string; three of the same open a triple-quoted one. Inside, a backslash
  escapes the next character (a newline too), the same delimiter closes it, and a newline
  closes a single-quoted string (so an apostrophe in prose lights one line at most). The
  value is 1 from the first character of the opening delimiter up to, *not* including, the
  last character of the closing one: after reading that character the string is over.
- ``in_comment``: from ``#`` outside a string up to the newline (the newline is 0).
- ``bracket_depth``: ``( [ {`` add 1, ``) ] }`` subtract 1, clamped at 0 (a stray closer
  does not go negative); every bracket counts, also inside strings and comments.
- ``line_position``: column of character j (0 for the first character of a line; a
  newline's column is the length of the line it ends). ``line_start``: column == 0.
- ``indent``: leading spaces/tabs of the current line read so far (a tab counts 1):
  ``min(column + 1, indentation of the line)``.
- ``word_position``: 1-based index of j in its run of word characters (letters, digits,
  ``_``), 0 outside words.
- ``whitespace`` / ``letter`` / ``digit`` / ``upper``: ``str.isspace`` / ``isalpha`` /
  ``isdigit`` / ``isupper`` of character j; ``punct``: Unicode category P* or S*
  (so ``+ = < > $ ^`` count, as in ``string.punctuation``).

    >>> t = 'x = f(a, "b#c")  # (\\n'
    >>> "".join(str(int(v)) for v in in_quote(t))
    '000000000111100000000'
    >>> "".join(str(int(v)) for v in in_comment(t))
    '000000000000000001110'
    >>> "".join(str(int(v)) for v in bracket_depth(t))
    '000001111111110000011'
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rnn_dissect.errors import UserError

__all__ = [
    "ABOUT",
    "BUILTIN",
    "Feature",
    "builtin_features",
    "callable_feature",
    "python_lexer",
    "regex_feature",
    "where_pattern",
    "where_rows",
]


@dataclass(frozen=True)
class Feature:
    """A named (N,) hypothesis; ``boolean`` features hold 0/1 and are scored by AUC."""

    name: str
    values: np.ndarray  # (N,) float32
    boolean: bool


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (N,)


def _char_table(text: str, predicate: Callable[[str], bool]) -> np.ndarray:
    """predicate(text[j]) for every j, evaluated once per distinct character."""
    uniq, inv = np.unique(_codes(text), return_inverse=True)
    table = np.array([predicate(chr(c)) for c in uniq.tolist()], dtype=bool)
    return table[inv] if len(uniq) else np.zeros(0, dtype=bool)


def _intervals(n: int, starts: list[int], ends: list[int]) -> np.ndarray:
    """0/1 (n,) array that is 1 on every [start, end)."""
    d = np.zeros(n + 1, dtype=np.int32)
    np.add.at(d, np.asarray(starts, dtype=np.int64), 1)
    np.add.at(d, np.asarray(ends, dtype=np.int64), -1)
    return np.cumsum(d[:n]).astype(np.float32)


_EVENTS = np.array([ord(c) for c in "'\"#\n\\"], dtype=np.uint32)


def python_lexer(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(in_quote, in_comment), both (N,) 0/1 float32, by the rules in the module docstring.

    Only the characters that can change the state (quotes, ``#``, newline, backslash) are
    visited in Python; the intervals between them are filled by numpy.
    """
    n = len(text)
    events = np.flatnonzero(np.isin(_codes(text), _EVENTS)).tolist()
    q_starts: list[int] = []
    q_ends: list[int] = []
    c_starts: list[int] = []
    c_ends: list[int] = []
    delim = ""  # the open string's delimiter, "" when not in a string
    in_comment = False
    skip = -1  # events at positions <= skip were consumed (escapes, triple quotes)
    for p in events:
        if p <= skip:
            continue
        ch = text[p]
        if in_comment:
            if ch == "\n":
                c_ends.append(p)
                in_comment = False
        elif not delim:
            if ch in "'\"":
                delim = ch * 3 if text.startswith(ch * 3, p) else ch
                skip = p + len(delim) - 1
                q_starts.append(p)
            elif ch == "#":
                in_comment = True
                c_starts.append(p)
        elif ch == "\\":
            skip = p + 1
        elif ch == "\n" and len(delim) == 1:
            q_ends.append(p)
            delim = ""
        elif text.startswith(delim, p):
            q_ends.append(p + len(delim) - 1)
            skip = p + len(delim) - 1
            delim = ""
    if delim:
        q_ends.append(n)
    if in_comment:
        c_ends.append(n)
    return _intervals(n, q_starts, q_ends), _intervals(n, c_starts, c_ends)


def in_quote(text: str) -> np.ndarray:
    return python_lexer(text)[0]


def in_comment(text: str) -> np.ndarray:
    return python_lexer(text)[1]


def bracket_depth(text: str) -> np.ndarray:
    """d_j = max(0, d_{j−1} + δ_j) = S_j − min(0, min_{k≤j} S_k), S the running sum of δ."""
    c = _codes(text)
    delta = np.isin(c, [40, 91, 123]).astype(np.int64) - np.isin(c, [41, 93, 125])  # (N,)
    s = np.cumsum(delta)
    if not len(s):
        return np.zeros(0, dtype=np.float32)
    return (s - np.minimum(np.minimum.accumulate(s), 0)).astype(np.float32)


def _line_start_index(text: str) -> np.ndarray:
    """(N,) index of the first character of the line holding j (a newline ends its line)."""
    idx = np.arange(len(text))
    nl = np.where(_codes(text) == 10, idx, -1)  # (N,)
    last_nl_before = np.maximum.accumulate(np.concatenate([[-1], nl[:-1]]))[: len(text)]
    return last_nl_before + 1


def line_position(text: str) -> np.ndarray:
    return (np.arange(len(text)) - _line_start_index(text)).astype(np.float32)


def line_start(text: str) -> np.ndarray:
    return (line_position(text) == 0).astype(np.float32)


def indent(text: str) -> np.ndarray:
    """Leading blanks of the line so far: count of j' ≤ j in the line with every character
    from the line start to j' a space or tab."""
    c = _codes(text)
    blank = (c == 32) | (c == 9)  # (N,)
    starts = _line_start_index(text)  # (N,)
    # non-blank characters since the line start, inclusive: 0 means j is in the indentation
    nonblank = np.concatenate([[0], np.cumsum(~blank)])  # (N + 1,)
    lead = blank & (nonblank[1:] - nonblank[starts] == 0)  # (N,)
    leads = np.concatenate([[0], np.cumsum(lead)])
    return (leads[1:] - leads[starts]).astype(np.float32)


def word_position(text: str) -> np.ndarray:
    word = _char_table(text, lambda ch: ch.isalnum() or ch == "_")  # (N,)
    idx = np.arange(len(text))
    last_break = np.maximum.accumulate(np.where(word, -1, idx)) if len(idx) else idx
    return np.where(word, idx - last_break, 0).astype(np.float32)


def _class(predicate: Callable[[str], bool]) -> Callable[[str], np.ndarray]:
    return lambda text: _char_table(text, predicate).astype(np.float32)


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"


# name -> (function of the text, boolean?), in the order reports list them
ABOUT: dict[str, str] = {  # one line per built-in feature, for pages and terminals
    "in_quote": "inside a string literal",
    "bracket_depth": "how many ( [ { are open",
    "line_position": "column in the current line",
    "indent": "leading blanks of the line so far",
    "in_comment": "inside a # comment",
    "line_start": "first character of a line",
    "whitespace": "a blank, tab or newline",
    "letter": "a letter",
    "digit": "a digit",
    "punct": "punctuation or a symbol",
    "upper": "an upper-case letter",
    "word_position": "position inside the current word (0 outside)",
}

BUILTIN: dict[str, tuple[Callable[[str], np.ndarray], bool]] = {
    "in_quote": (in_quote, True),
    "bracket_depth": (bracket_depth, False),
    "line_position": (line_position, False),
    "indent": (indent, False),
    "in_comment": (in_comment, True),
    "line_start": (line_start, True),
    "whitespace": (_class(str.isspace), True),
    "letter": (_class(str.isalpha), True),
    "digit": (_class(str.isdigit), True),
    "punct": (_class(_is_punct), True),
    "upper": (_class(str.isupper), True),
    "word_position": (word_position, False),
}


def builtin_features(text: str, names: Sequence[str] | None = None) -> list[Feature]:
    """The built-in features (all, or ``names``) over ``text``, in :data:`BUILTIN` order."""
    wanted = list(BUILTIN) if names is None else list(names)
    unknown = [n for n in wanted if n not in BUILTIN]
    if unknown:
        raise UserError(f"unknown feature {unknown[0]!r}; choose from {', '.join(BUILTIN)}")
    quote, comment = (
        python_lexer(text) if {"in_quote", "in_comment"} & set(wanted) else (None, None)
    )
    out = []
    for name in BUILTIN:
        if name in wanted:
            fn, boolean = BUILTIN[name]
            shared = {"in_quote": quote, "in_comment": comment}.get(name)
            out.append(Feature(name, fn(text) if shared is None else shared, boolean))
    return out


def regex_feature(name: str, pattern: str, text: str) -> Feature:
    """Boolean: 1 on every character inside a match of ``pattern`` (``re``, non-overlapping)."""
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise UserError(f"feature {name!r}: bad regular expression {pattern!r} ({e})") from None
    spans = [m.span() for m in rx.finditer(text) if m.end() > m.start()]
    return Feature(name, _intervals(len(text), [s for s, _ in spans], [e for _, e in spans]), True)


def where_pattern(pattern: str) -> re.Pattern[str]:
    """``--where``'s pattern compiled (a bad one is the user's error, one line)."""
    try:
        return re.compile(pattern)
    except re.error as e:
        raise UserError(
            f"--where {shlex.quote(pattern)} is not a regular expression ({e})"
        ) from None


def where_rows(pattern: str, text: str, what: str = "the text") -> np.ndarray:
    """(N,) bool: the characters a ``--where`` pattern selects for scoring.

    ``re.finditer(pattern, text)`` (non-overlapping matches, left to right, as ``re.sub``
    finds them); each match covers ``text[m.start(g):m.end(g)]`` with g = 1 when the pattern
    has a capturing group (its first group: ``\\|(.)`` selects the character after each
    ``|``; use ``(?:…)`` to group without capturing) and g = 0 otherwise (the whole match).
    Empty spans and a group that did not take part select nothing.

        >>> "".join("x" if w else "." for w in where_rows(r"\\|(.)", "ab|c d|e"))
        '...x...x'
    """
    rx = where_pattern(pattern)
    g = 1 if rx.groups else 0
    spans = [m.span(g) for m in rx.finditer(text) if m.end(g) > m.start(g)]  # (-1,-1): absent
    rows = _intervals(len(text), [s for s, _ in spans], [e for _, e in spans]) > 0
    if not rows.any():
        raise UserError(
            f"--where {shlex.quote(pattern)} matches no character of {what}; nothing would be scored "
            "(check the pattern's escaping: | . ( are special in a regex)"
        )
    return rows


def callable_feature(
    name: str,
    fn: Callable[[str], Sequence[float] | np.ndarray],
    text: str,
    boolean: bool | None = None,
) -> Feature:
    """``fn(text)`` must give N numbers; boolean if it returns bools (or ``boolean=True``)."""
    raw = np.asarray(fn(text))
    if raw.shape != (len(text),):
        raise UserError(
            f"feature {name!r} returned shape {raw.shape}; it must return one value per "
            f"character, shape ({len(text)},)"
        )
    is_bool = raw.dtype == bool if boolean is None else boolean
    values = raw.astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise UserError(f"feature {name!r} returned NaN or infinity; return finite numbers")
    if is_bool and not np.all((values == 0) | (values == 1)):
        raise UserError(f"feature {name!r} is marked boolean but has values other than 0 and 1")
    return Feature(name, values, bool(is_bool))
