"""The one exception type for mistakes a user can make (bad flag, bad file, bad text).

The CLI prints ``error: <message>`` on one line and exits with code 2; no traceback.
Messages name the problem *and* the fix. Bugs stay ordinary exceptions and still raise.
"""

__all__ = ["UserError"]


class UserError(Exception):
    """A problem in the user's input, with a one-line message that says how to fix it."""
