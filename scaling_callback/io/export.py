"""Write a long-format frame as CSV or Parquet, atomically (a failed write leaves no partial file)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

from scaling_callback.errors import InputError

FORMATS = ("csv", "parquet")


def write_long(frame: pd.DataFrame, output: str | Path | None, file_format: str = "csv") -> None:
    """``frame`` to ``output`` (stdout for CSV when None) in ``file_format``."""
    if file_format not in FORMATS:
        raise InputError(f"unknown format {file_format!r}; choose one of {', '.join(FORMATS)}")
    if output is None:
        if file_format != "csv":
            raise InputError("--format parquet needs --output FILE")
        frame.to_csv(sys.stdout, index=False)
        return
    target = Path(output)
    if target.is_dir():
        raise InputError(f"{target}: is a directory; give a file to write")
    if not target.parent.is_dir():
        raise InputError(f"{target}: its directory {target.parent} does not exist")
    if file_format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError("--format parquet needs pyarrow: pip install 'scaling-callback[io]'") from None
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(handle)
    try:
        if file_format == "csv":
            frame.to_csv(temporary, index=False)
        else:
            frame.to_parquet(temporary, index=False)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
