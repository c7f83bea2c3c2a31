"""Why a file the operator named cannot be read, in the words an error message uses."""

from __future__ import annotations


def unreadable(exc: OSError | UnicodeDecodeError) -> str:
    """``no such file``, ``permission denied``...: the reason for ``cannot read <file>``."""
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "it is a folder, not a file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or type(exc).__name__
