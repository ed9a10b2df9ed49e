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


MODEL_NOT_VISIBLE = ("trails.models has no model of this id that this role may see: a role sees only the "
                     "models of tables it may SELECT from")
"""The DETAIL of a ``model N not found`` ERROR."""


def sql_text(value) -> str:
    """A user's argument as SQL would show it: ``NULL``, ``'text'``, ``60``, ``Infinity``."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return f"{value:g}"
    return str(value)


def is_positive_number(value) -> bool:
    """Whether ``value`` is a finite number > 0 (NULL, NaN and Infinity are not)."""
    return value is not None and 0 < value < float("inf")


def require_seed(seed) -> None:
    """Raise :class:`TrailsError` unless ``seed`` is an integer ≥ 0."""
    if seed is None or seed < 0:
        raise TrailsError(f"seed must be an integer >= 0, got {sql_text(seed)}", hint="e.g. seed => 0")
