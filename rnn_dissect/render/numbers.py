"""How every renderer writes numbers: short, plain ASCII, the same in SVG, HTML and terminal.

A tensor with at most ``AUTO_MAX_ELEMENTS`` entries is shown in full (a matrix one row per
line); a bigger one as its shape and norms, which is what a reader can take in at a glance.

    >>> num(0.7700000000000001), num(-1.2e-7), num(2.0)
    ('0.77', '-1.2e-07', '2')
    >>> lines(np.array([[0.3, -0.1, 0.2]]))
    ['[0.3, -0.1, 0.2]']
    >>> summary(np.array([3.0, -4.0]))
    'shape 2  ‖·‖₂=5  max|·|=4'
"""

from __future__ import annotations

import numpy as np

__all__ = ["AUTO_MAX_ELEMENTS", "is_small", "lines", "magnitude", "num", "summary"]

AUTO_MAX_ELEMENTS = 12  # a 3×4 weight matrix still shows every number; 4×4 switches to norms


def num(v: float, digits: int = 4) -> str:
    """``v`` to ``digits`` significant digits, ASCII minus, no ``-0``."""
    s = f"{float(v):.{digits}g}"
    return "0" if s in ("-0", "0") else s


def is_small(a: np.ndarray, max_elements: int = AUTO_MAX_ELEMENTS) -> bool:
    return int(np.asarray(a).size) <= max_elements


def lines(a: np.ndarray, digits: int = 4, per_line: int = 6) -> list[str]:
    """Every entry: a scalar or 1-element tensor as one number, a vector as ``[a, b]``,
    a matrix as one ``[...]`` line per row, higher ranks flattened to rows of the last axis."""
    arr = np.asarray(a)
    if arr.size == 1:
        return [num(float(arr.reshape(())), digits)]
    rows = arr.reshape(-1, arr.shape[-1]) if arr.ndim > 1 else arr[None, :]
    out: list[str] = []
    for row in rows:  # a long row wraps after ``per_line`` numbers
        parts = [
            ", ".join(num(v, digits) for v in row[i : i + per_line])
            for i in range(0, len(row), per_line)
        ]
        out.extend(
            ("[" if i == 0 else " ") + p + ("]" if i == len(parts) - 1 else ",")
            for i, p in enumerate(parts)
        )
    return out


def magnitude(a: np.ndarray | None) -> float:
    """max |a_i| (0 for None or empty): the one number behind a gradient's bar and border."""
    if a is None or np.asarray(a).size == 0:
        return 0.0
    return float(np.max(np.abs(a)))


def summary(a: np.ndarray, digits: int = 4) -> str:
    """Shape, Euclidean norm and largest magnitude of a tensor."""
    arr = np.asarray(a)
    shape = "×".join(map(str, arr.shape)) or "()"
    return (
        f"shape {shape}  ‖·‖₂={num(float(np.linalg.norm(arr.ravel())), digits)}"
        f"  max|·|={num(magnitude(arr), digits)}"
    )
