"""The one exception type the tools turn into a one-line message (no traceback)."""


class PaddleFaceError(Exception):
    """A user-facing error: its message is one sentence naming the file and what was expected."""
