"""Live progress for the long commands (sweep, report, replay-stopping, reproduce).

On a terminal a tqdm bar redraws in place (count, elapsed, ETA, a status text); otherwise (a log
file, CI, a pipe) plain lines are written when the count changes, at most one per
``PLAIN_INTERVAL_S`` seconds unless the count reaches the total, each with elapsed time and ETA.
Progress goes to stderr so that stdout stays the command's result (``--json`` output included).
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from typing import TextIO

#: Seconds between plain (non-terminal) progress lines: a 10-minute sweep writes ~60 lines, not thousands.
PLAIN_INTERVAL_S = 10.0


def format_value(value: float | None, digits: int = 3) -> str:
    """A number for a terminal line: ``digits`` significant digits, '-' for None or non-finite."""
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}g}"


def format_interval(pair, digits: int = 3) -> str:
    """'[0.0158, 0.983]', or '' when there is no interval."""
    if not pair or len(pair) != 2:
        return ""
    return f"[{format_value(pair[0], digits)}, {format_value(pair[1], digits)}]"


def format_seconds(seconds: float | None) -> str:
    """'42 s', '3 min 05 s', '1 h 02 min'; '?' when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def eta_seconds(elapsed: float, fraction_done: float) -> float | None:
    """Remaining time if the rest goes at the pace so far; None before anything is done."""
    if fraction_done <= 0 or fraction_done > 1:
        return None
    return elapsed * (1.0 - fraction_done) / fraction_done


def _count(value: float) -> int | float:
    """Whole counts print as integers (3/18, not 3.0/18.0)."""
    return int(value) if float(value).is_integer() else value


def is_terminal(stream: TextIO) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


class LiveProgress:
    """A count out of a total with a status text: tqdm on a terminal, throttled plain lines otherwise."""

    def __init__(
        self,
        label: str,
        total: float,
        unit: str = "",
        stream: TextIO | None = None,
        terminal: bool | None = None,
        caller_eta: bool = False,
    ) -> None:
        """``caller_eta``: the ETA is passed to :meth:`update` (units of unequal cost) instead of done/total's pace."""
        self.label, self.total, self.unit = label, float(total), unit
        self.caller_eta = caller_eta
        self.eta: float | None = None
        self.stream = stream or sys.stderr
        self.terminal = is_terminal(self.stream) if terminal is None else terminal
        self.started = time.monotonic()
        self.done = 0.0
        self.status = ""
        self._last_plain = -float("inf")
        self._last_line = ""
        self._bar = None
        if self.terminal:
            from tqdm import tqdm

            size = shutil.get_terminal_size(fallback=(120, 24))  # a pty may report 0 x 0: tqdm would draw nothing
            self._bar = tqdm(
                total=_count(self.total),
                desc=label,
                unit=unit or "it",
                file=self.stream,
                leave=True,
                bar_format="{desc}: {n_fmt}/{total_fmt} {unit} |{bar:20}| {elapsed} elapsed"
                + ("{postfix}" if caller_eta else ", ETA {remaining}{postfix}"),
                ncols=size.columns,
                nrows=max(size.lines, 4),
            )

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def update(
        self,
        done: float,
        status: str = "",
        total: float | None = None,
        force: bool = False,
        eta: float | None = None,
    ) -> None:
        """Set the count (and the total, if it changed), the status and, with ``caller_eta``, the ETA (seconds)."""
        if total is not None:
            self.total = float(total)
        self.done, self.status, self.eta = float(done), status, eta
        if self._bar is not None:
            if total is not None and self._bar.total != self.total:
                self._bar.total = _count(self.total)
            self._bar.n = _count(self.done)
            self._bar.set_postfix_str(
                f"ETA {format_seconds(eta)} | {status}" if self.caller_eta else status, refresh=False
            )
            self._bar.refresh()
            return
        now = time.monotonic()
        finished = self.total > 0 and self.done >= self.total
        if not force and not finished and now - self._last_plain < PLAIN_INTERVAL_S:
            return
        line = self.plain_line()
        if line.split(" | elapsed")[0] == self._last_line and not force:
            return  # nothing but the clock changed
        self._last_line = line.split(" | elapsed")[0]
        self._last_plain = now
        self.stream.write(line + "\n")
        self.stream.flush()

    def plain_line(self) -> str:
        """The line written when the stream is not a terminal."""
        share = self.done / self.total if self.total > 0 else 0.0
        eta = self.eta if self.caller_eta else eta_seconds(self.elapsed, share)
        count = f"{_count(self.done)}/{_count(self.total)}{(' ' + self.unit) if self.unit else ''}"
        status = f" | {self.status}" if self.status else ""
        return f"[{self.label}] {count}{status} | elapsed {format_seconds(self.elapsed)}, ETA {format_seconds(eta)}"

    def write(self, text: str) -> None:
        """A message above the live line (or a plain line)."""
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> LiveProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ReportProgress:
    """The report's stages as they start, and the bootstrap's resamples as a count with an ETA."""

    def __init__(self, stream: TextIO | None = None, terminal: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.terminal = is_terminal(self.stream) if terminal is None else terminal
        self.started = time.monotonic()
        self.stage = ""
        self.live: LiveProgress | None = None

    def update(self, stage: str, done: int, total: int) -> None:
        """Called by ``write_report`` as it advances."""
        if stage == "bootstrap":
            if self.live is None:
                self.live = LiveProgress("report: bootstrap", total, "resamples", self.stream, self.terminal)
            self.live.update(done, total=total)
        elif stage != self.stage:
            if self.live is not None:
                self.live.close()
                self.live = None
            elapsed = format_seconds(time.monotonic() - self.started)
            if self.terminal:
                self.stream.write(f"\r\x1b[2Kreport: {stage} ({elapsed} elapsed)")
            else:
                self.stream.write(f"[report] {stage} | elapsed {elapsed}\n")
            self.stream.flush()
        self.stage = stage

    def __enter__(self) -> ReportProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.close()
        if self.terminal:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
