"""User-facing errors: one base class, printed by the CLI without a traceback (exit code 2)."""

from __future__ import annotations


class RecsysError(Exception):
    """Base class of every error caused by user input (files, columns, configs)."""

    exit_code: int = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file = file
        self.row = row
        self.column = column
        self.message = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(f"file {self.file}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class DataError(RecsysError):
    """A data file is missing, unreadable or holds invalid values."""


class ConfigError(RecsysError):
    """A configuration value, group or key is invalid."""


class ImageError(RecsysError):
    """An image is missing, corrupt, too large or outside the data root."""


class ModelError(RecsysError):
    """A model, checkpoint or training run cannot proceed (dimensions, NaN loss, checkpoint mismatch)."""


class BundleError(RecsysError):
    """A serving bundle is missing files, fails its checksums or has an incompatible version."""


class RuleError(RecsysError):
    """A rules configuration or an outcome log is invalid."""
