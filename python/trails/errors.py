"""The one exception type that trails raises for a user's mistake.

:mod:`trails.sql_api` turns it into a PostgreSQL ERROR with DETAIL and HINT; out of the
database it is an ordinary ``ValueError`` subclass with the same message.
"""


class TrailsError(ValueError):
    """A user-facing error: ``message`` says what is wrong, ``hint`` what to do about it."""

    def __init__(self, message: str, *, hint: str | None = None, detail: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.detail = detail

    def __str__(self) -> str:
        text = self.message
        if self.detail:
            text += f"\nDETAIL: {self.detail}"
        if self.hint:
            text += f"\nHINT: {self.hint}"
        return text
