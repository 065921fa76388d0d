"""The one exception type for mistakes a user can make (bad flag, bad file, bad text).

The CLI prints ``error: <message>`` on one line and exits with code 2; no traceback.
Messages name the problem *and* the fix. Bugs stay ordinary exceptions and still raise.
"""

from collections.abc import Iterable
from typing import Any

__all__ = ["UserError", "short"]


class UserError(Exception):
    """A problem in the user's input, with a one-line message that says how to fix it."""


def short(names: Iterable[Any], limit: int = 3) -> str:
    """``'a', 'b', 'c' and 2 more``: names from a file, quoted and cut for a one-line message."""
    shown = [repr(n)[:60] for n in names]
    more = f" and {len(shown) - limit} more" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more
