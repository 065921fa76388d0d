"""Flags that several commands share, spelled once: ``--backend`` and ``--device``."""

from __future__ import annotations

import argparse

__all__ = ["add_backend"]


def add_backend(p: argparse.ArgumentParser, torch: str, cuda: str) -> None:
    """``--backend numpy|torch`` (default numpy) and ``--device cpu|cuda`` (default cpu);
    ``torch`` and ``cuda`` say what each choice does for this command."""
    p.add_argument("--backend", choices=("numpy", "torch"), default="numpy", help=torch)
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help=f"with --backend torch: {cuda} (default cpu)",
    )
