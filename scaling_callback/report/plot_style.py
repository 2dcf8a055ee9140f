"""What every report figure shares: the Agg backend, resolution, smoothing, log-axis ticks, run labels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

DPI = 110
#: End-of-curve markers, one per planned token budget (smallest budget first).
BUDGET_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (the raw per-step training loss is a noisy minibatch estimate)."""
    if window <= 1 or values.size < window:
        return values
    kernel = np.ones(window) / window
    head = np.cumsum(values[: window - 1]) / np.arange(1, window)
    return np.concatenate([head, np.convolve(values, kernel, mode="valid")])


def smoothing_window(values: np.ndarray) -> int:
    """A twelfth of the curve, at least 5 steps: enough to see trends through minibatch noise."""
    return max(5, len(values) // 12)


def label_narrow_log_axis(ax: plt.Axes) -> None:
    """Plain-number ticks on a log loss axis; losses often span less than a decade (no decade tick to label)."""
    low, high = ax.get_ylim()
    ratio = high / low if low > 0 else 10.0
    step = 0.1 if ratio < 1.6 else 0.2 if ratio < 3.0 else None
    subs = np.arange(1.0, 10.0, step) if step else (1.0, 2.0, 5.0)
    ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=subs, numticks=100))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def short_number(value: float) -> str:
    """3 significant digits with a k/M/G/T suffix (4.85k, 1.28M): labels that fit a legend."""
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def size_colours(sizes: list[float]) -> dict[float, tuple]:
    """One viridis colour per model size, small (dark) to large (light)."""
    colours = plt.cm.viridis(np.linspace(0.05, 0.85, max(len(sizes), 1)))
    return dict(zip(sizes, colours))


def set_margins(fig: plt.Figure, left: float, right: float, bottom: float, top: float, **spacing: float) -> None:
    """Margins in inches (fixed, unlike ``tight_layout``, which costs ~1 s per figure on log axes with many ticks)."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height, **spacing
    )
