"""Figures of the reproduce experiments: measured points, fitted lines and theory on log–log axes.

Conventions in every panel: markers or thin lines are measured, a solid line is the power law
fitted to them, a dashed line is theory (a closed-form slope, drawn through the middle of the
fitted range, or the theoretical curve itself). Files are PNG at 150 dpi.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.colors

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np

from scaling_callback.reproduce.common import ExperimentResult

FIT_STYLE = {"color": "tab:red", "linewidth": 1.8}
THEORY_STYLE = {"color": "black", "linestyle": "--", "linewidth": 1.5}


def _theory_slope(ax: plt.Axes, x: np.ndarray, y: np.ndarray, slope: float, label: str) -> None:
    """A dashed line of the given log–log slope through the geometric middle of (x, y)."""
    x_mid, y_mid = np.exp(np.mean(np.log(x))), np.exp(np.mean(np.log(y)))
    ax.plot(x, y_mid * (x / x_mid) ** slope, label=label, **THEORY_STYLE)


def _finish(ax: plt.Axes, xlabel: str, ylabel: str, title: str, legend_loc: str = "best") -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # crowded 2×10^1-style labels
        if np.log10(max(limits) / min(limits)) < 2.5:  # a short axis: label 1-2-5 steps in plain numbers
            axis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc=legend_loc)


def plot_mrs(result: ExperimentResult, path: Path) -> None:
    """E1: loss versus N and versus P for each α; double descent at N = P; the plateau once N passes M."""
    data = result.plot_data
    fig, axes = plt.subplots(2, 2, figsize=(10, 8))
    for ax, direction, symbol in ((axes[0, 0], "features", "N"), (axes[0, 1], "samples", "P")):
        for curve, color in zip([c for c in data["curves"] if c["direction"] == direction], ("tab:blue", "tab:green")):
            sizes, losses = curve["sizes"], curve["losses"]
            mean = np.exp(np.log(losses).mean(axis=0))
            ax.plot(
                sizes, mean, "o", color=color, label=f"measured, α={curve['alpha']:g} (mean of {losses.shape[0]} seeds)"
            )
            amplitude, exponent = curve["fit"]
            ax.plot(sizes, amplitude * sizes ** (-exponent), label=f"fit: slope −{exponent:.3f}", **FIT_STYLE)
            _theory_slope(ax, sizes, mean, -curve["alpha"], f"theory: slope −{curve['alpha']:g}")
        other = "P = ∞" if symbol == "N" else "N = ∞"
        factor = data["curves"][0]["latent_factor"]
        _finish(
            ax,
            f"{symbol} ({'features' if symbol == 'N' else 'training samples'})",
            "test loss",
            f"MRS: loss vs {symbol} ({other}, M = {factor}·{symbol})",
            legend_loc="lower left",
        )
    dd = data["double_descent"]
    ax = axes[1, 0]
    ax.plot(
        dd["widths"], dd["losses"], "o", color="tab:blue", label="measured (exact identity below P, Monte-Carlo above)"
    )
    finite = np.isfinite(dd["theory"])
    ax.plot(dd["widths"][finite], dd["theory"][finite], label="theory: deterministic equivalent", **THEORY_STYLE)
    ax.axvline(dd["samples"], color="grey", linestyle=":", label=f"N = P = {dd['samples']}")
    _finish(ax, "N (features)", "test loss", f"double descent at N = P (α = 1, M = {dd['latent']})")
    plateau = data["plateau"]
    ax = axes[1, 1]
    ax.plot(plateau["widths"], plateau["losses"], "o", color="tab:blue", label="measured L(N, ∞)")
    ax.plot(plateau["widths"], plateau["theory"], label="theory: σ² + deterministic equivalent", **THEORY_STYLE)
    ax.axvline(plateau["latent"], color="grey", linestyle=":", label=f"N = M = {plateau['latent']}")
    ax.axhline(plateau["noise"], color="tab:orange", linestyle=":", label=f"label noise σ² = {plateau['noise']:g}")
    _finish(ax, "N (features)", "test loss", "the power law stops once N passes M (α = 1, P = ∞)")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def plot_frontiers(result: ExperimentResult, path: Path, time_label: str, title: str) -> None:
    """E2/E3: per-size loss versus compute, the envelope and its fit; optimal size versus compute."""
    phases = result.plot_data["phases"]
    fig, axes = plt.subplots(len(phases), 2, figsize=(10, 4.2 * len(phases)), squeeze=False)
    for row, phase in zip(axes, phases):
        sizes, times, log_loss, exponents = phase["sizes"], phase["times"], phase["log_loss"], phase["exponents"]
        colors = plt.cm.viridis(np.linspace(0, 1, sizes.size))  # sizes are geometric: matches the LogNorm bar
        for size, curve, color in zip(sizes, log_loss, colors):
            row[0].plot(size * times, np.exp(curve), color=color, linewidth=0.6)
        label = f"α={phase['alpha']:g}, β={phase['beta']:g}"
        if exponents is not None:
            computes, best, optimal = exponents.frontier.fit_points()
            row[0].plot(computes, best, "k.", markersize=3, label="lower envelope (interior budgets)")
            row[0].plot(
                computes,
                exponents.eta_amplitude * computes ** (-exponents.eta),
                label=f"fit: η = {exponents.eta:.3f}",
                **FIT_STYLE,
            )
            _theory_slope(
                row[0],
                computes,
                best,
                -phase["expected"]["loss"].value,
                f"theory: η = {phase['expected']['loss'].value:.3f}",
            )
            row[1].plot(
                computes, optimal, "o", color="tab:blue", markersize=3, label="measured optimal d (IsoFLOP parabola)"
            )
            row[1].plot(
                computes,
                exponents.xi_amplitude * computes**exponents.xi,
                label=f"fit: ξ = {exponents.xi:.3f}",
                **FIT_STYLE,
            )
            if "size" in phase["expected"]:
                _theory_slope(
                    row[1],
                    computes,
                    optimal,
                    phase["expected"]["size"].value,
                    f"theory: ξ = {phase['expected']['size'].value:.3f}",
                )
        if exponents is not None:  # zoom on the frontier: the plateaus run on for decades
            computes, best, _ = exponents.frontier.fit_points()
            row[0].set_xlim(computes.min() / 100, computes.max() * 100)
            row[0].set_ylim(best.min() / 5, np.exp(log_loss.max()) * 1.5)
        mappable = plt.cm.ScalarMappable(cmap="viridis", norm=matplotlib.colors.LogNorm(sizes[0], sizes[-1]))
        fig.colorbar(mappable, ax=row[0], label="model size d (thin lines)")
        _finish(row[0], f"compute f = d·{time_label}", "population loss", f"{title} ({label})")
        _finish(row[1], f"compute f = d·{time_label}", "compute-optimal d*", f"{title}: optimal size ({label})")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def plot_lightning(result: ExperimentResult, path: Path) -> None:
    """E4: Lightning population-loss curves against the recursion, with both envelope fits."""
    data = result.plot_data
    fig, ax = plt.subplots(figsize=(7, 5))
    colors = plt.cm.viridis(np.linspace(0, 0.9, data["sizes"].size))
    for size, cost, measured, expected, color in zip(
        data["sizes"], data["flops_per_step"], data["measured"], data["expected"], colors
    ):
        ax.plot(
            cost * data["steps"], np.exp(measured), "o", color=color, markersize=2.5, label=f"Lightning d={int(size)}"
        )
        ax.plot(cost * data["steps"], np.exp(expected), "--", color=color, linewidth=1.0)
    window = data["window"]
    computes = data["computes"][window]
    for name, style in (("Lightning", FIT_STYLE), ("recursion", THEORY_STYLE)):
        amplitude, exponent = data["fits"][name]
        ax.plot(
            computes, amplitude * computes ** (-exponent), label=f"{name} envelope fit: η = {exponent:.3f}", **style
        )
    ax.plot([], [], "k--", linewidth=1.0, label="exact recursion (dashed, per size)")
    _finish(
        ax, "FLOPs (flops_per_batch × steps)", "population loss", "PLRF module trained by Lightning vs exact recursion"
    )
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
