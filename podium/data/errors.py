"""Data errors that name the file and say what to fix."""

__all__ = ["DataError"]


class DataError(ValueError):
    """A file or pairing problem in the dataset; the message names the file(s)."""
