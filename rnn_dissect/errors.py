"""The one exception type for mistakes a user can make (bad flag, bad file, bad text).

The CLI prints ``error: <message>`` on one line and exits with code 2; no traceback.
Messages name the problem *and* the fix. Bugs stay ordinary exceptions and still raise.
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["UserError", "make_dir", "short", "writable_dir"]


class UserError(Exception):
    """A problem in the user's input, with a one-line message that says how to fix it."""


def short(names: Iterable[Any], limit: int = 3) -> str:
    """``'a', 'b', 'c' and 2 more``: names from a file, quoted and cut for a one-line message."""
    shown = [repr(n)[:60] for n in names]
    more = f" and {len(shown) - limit} more" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


def writable_dir(path: str | Path, flag: str = "--out") -> Path:
    """Check, creating nothing, that the directory ``path`` can exist: it is no file and no
    file stands where one of its parents should be (``--out notes.txt/run``)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file; give a directory")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(
                    f"{flag} {path}: {parent} is a file, not a directory; choose another place"
                )
            break
    return path


def make_dir(path: str | Path, flag: str = "--out") -> Path:
    """Create the output directory ``path`` with its parents; a path that cannot be one (see
    :func:`writable_dir`) or a refused ``mkdir`` (no permission, read-only disk) is one line."""
    path = writable_dir(path, flag)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(
            f"cannot create {flag} {path} ({e.strerror or e}); choose another directory"
        ) from None
    return path
