"""Checks every reader makes before it opens a file a user named: one line naming the path and the problem.

A directory where a file is expected, a missing or unreadable file, a file over the size limit, a
binary or non-UTF-8 file where text is expected, a SQLite store that is not a SQLite database:
each becomes an :class:`InputError` (exit status 2 from the CLI) before anything is parsed or written.

Size limits: tables (CSV curve and point files) up to :data:`MAX_TABLE_BYTES`, configs up to
:data:`MAX_CONFIG_BYTES`. ``SCALING_CALLBACK_MAX_FILE_MB`` raises (or lowers) the table limit.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path

from scaling_callback.errors import InputError

# 64 MiB: a per-step log of ~2 million steps at ~32 bytes a row (step, lr, loss and a few metrics).
# pandas holds about 3x a CSV's size while parsing it (~200 MB, ~2 s here); per-run fits use at most
# a few thousand points, so longer logs are better thinned (or the limit raised, below).
MAX_TABLE_BYTES = 64 * 2**20
# 1 MiB: a sweep config is a few hundred lines; anything larger is not one (and YAML aliases can
# make a small file expand, so the parsed size is bounded too, see :func:`read_text`).
MAX_CONFIG_BYTES = 2**20
SQLITE_HEADER = b"SQLite format 3\x00"
_SNIFF_BYTES = 64 * 2**10
_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


def table_limit() -> int:
    """The table size limit in bytes (``SCALING_CALLBACK_MAX_FILE_MB`` when set)."""
    raw = os.environ.get("SCALING_CALLBACK_MAX_FILE_MB")
    if raw is None:
        return MAX_TABLE_BYTES
    try:
        megabytes = float(raw)
    except ValueError:
        raise InputError(f"SCALING_CALLBACK_MAX_FILE_MB={raw!r} is not a number of megabytes") from None
    if not megabytes > 0:
        raise InputError(f"SCALING_CALLBACK_MAX_FILE_MB={raw!r} must be positive")
    return int(megabytes * 2**20)


def check_file(path: str | Path, what: str = "file", max_bytes: int | None = None) -> Path:
    """``path`` as a Path after checking it is an existing, readable regular file of at most ``max_bytes``."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such {what if what.endswith('file') else 'file'}")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a {what}")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file (a device, pipe or socket), expected a {what}")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied reading this {what}")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise InputError(
            f"{path}: {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:g} MiB limit for a {what}"
            + (" (set SCALING_CALLBACK_MAX_FILE_MB to raise it)" if what.endswith("table") else "")
        )
    return path


def _text_problem(head: bytes) -> str | None:
    """Why the first bytes of a file are not UTF-8 text, or None."""
    for bom, name in _BOMS.items():
        if head.startswith(bom):
            return f"is {name} text, not UTF-8 (save it as UTF-8)"
    if b"\x00" in head:
        return "is a binary file (it holds NUL bytes), not text"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.end < len(head) - 3:  # not merely a character cut at the sniff boundary
            return f"is not UTF-8 text (byte {error.start} is 0x{head[error.start]:02x})"
    return None


def check_text_file(path: str | Path, what: str = "file", max_bytes: int | None = None) -> Path:
    """:func:`check_file`, then the first 64 KiB must be UTF-8 text (not binary, not UTF-16)."""
    path = check_file(path, what, max_bytes)
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if head.startswith(SQLITE_HEADER):
        raise InputError(f"{path}: is a SQLite database, expected a {what}")
    problem = _text_problem(head)
    if problem:
        raise InputError(f"{path}: {problem}; expected a {what}")
    return path


def check_table_file(path: str | Path) -> Path:
    """A CSV table a user named: a readable UTF-8 text file under the table limit."""
    return check_text_file(path, "CSV table", table_limit())


def read_text(path: str | Path, what: str = "file", max_bytes: int = MAX_CONFIG_BYTES) -> str:
    """The whole of a small UTF-8 text file (a config), checked as above; a UTF-8 BOM is dropped."""
    path = check_text_file(path, what, max_bytes)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{path}: is not UTF-8 text (byte {error.start} is 0x{data[error.start]:02x}); expected a {what}"
        ) from None


def check_sqlite_file(path: str | Path, what: str = "store file") -> Path:
    """An existing SQLite database file (by its 16-byte header); an empty file is not one."""
    path = check_file(path, what)
    with open(path, "rb") as handle:
        head = handle.read(len(SQLITE_HEADER))
    if head != SQLITE_HEADER:
        kind = "an empty file" if not head else ("a text file" if _text_problem(head) is None else "a binary file")
        raise InputError(f"{path}: not a SQLite {what} (it is {kind})")
    return path
