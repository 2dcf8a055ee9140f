"""``summary.md``: the sweep's outcome in words and tables, readable without the plots or the code."""

from __future__ import annotations

import math


def _num(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (int, float)) and (abs(value) >= 1e5 or 0 < abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _interval(pair) -> str:
    return f"[{_num(pair[0])}, {_num(pair[1])}]" if pair else "(no bootstrap)"


def summary_markdown(sweep: str, summary: dict, details: dict) -> str:
    """Markdown text of the report."""
    front, rec = summary["frontier"], summary["recommendation"]
    lines = [
        f"# Sweep `{sweep}`",
        "",
        f"- **Runs**: {summary['runs']} ({summary['finished']} trained to their planned end, "
        f"{summary['stopped']} stopped early by the stopping policy).",
        f"- **Compute saved**: {summary['compute_saved']:.1%} of the FLOPs the stopped runs would have spent "
        "to their planned end (relative to the whole sweep run to completion).",
    ]
    if front["a"] is not None:
        lines += [
            "",
            "## Compute-optimal frontier (Chinchilla approach 3)",
            "",
            "L(N, D) = E + A/N^α + B/D^β fitted to the best final loss of each (N, D) (observed; a stopped "
            f"run's forecast only where no run of that N and D finished), N = {details['n_convention']} parameters, "
            "D = planned tokens, C = 6ND.",
            "",
            "| quantity | value | 95 % bootstrap interval | meaning |",
            "|---|---|---|---|",
            f"| a | {_num(front['a'])} | {_interval(front['a_ci'])} | N_opt ∝ C^a: how model size should grow with compute |",
            f"| b | {_num(front['b'])} | {_interval(front['b_ci'])} | D_opt ∝ C^b: how data should grow (a + b = 1) |",
            f"| E | {_num(front['E'])} | | irreducible loss |",
            f"| α | {_num(front['alpha'])} | | loss exponent in parameters |",
            f"| β | {_num(front['beta'])} | | loss exponent in tokens |",
            "",
            "## Recommendation for a larger budget",
            "",
            f"At C = {_num(rec['flops'])} FLOPs: train N_opt ≈ {_num(rec['n_opt'])} parameters on "
            f"D_opt ≈ {_num(rec['d_opt'])} tokens; expected loss {_num(rec['loss'])} "
            f"(95 % interval {_interval(rec['loss_ci'])}). This extrapolates the fitted law beyond the sweep: "
            "the further C lies from the largest run, the wider the interval should be read.",
        ]
    else:
        lines += ["", "No compute-optimal fit: it needs at least 8 finished or stopped runs over 3 sizes and 2 budgets."]
    approaches = details.get("approaches") or {}
    if approaches:
        lines += ["", "## The three approaches side by side", "", "| approach | a | note |", "|---|---|---|",
                  f"| 3: parametric fit L(N, D) | {_num(front['a'])} | |"]
        for key, label in (("approach_1", "1: lower envelope of loss-vs-FLOP curves"), ("approach_2", "2: IsoFLOP parabolas")):
            record = approaches.get(key) or {}
            note = record.get("note") or "; ".join(record.get("warnings", []))
            lines.append(f"| {label} | {_num(record.get('a'))} | {note} |")
    if summary.get("warnings"):
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in summary["warnings"]]
    lines += ["", "## Runs", "", "| run | status | N | D (planned) | final loss | source | predicted final [interval] | stop |",
              "|---|---|---|---|---|---|---|---|"]
    for run in details.get("runs", []):
        predicted = (f"{_num(run['pred_final_loss'])} [{_num(run['pred_final_low'])}, {_num(run['pred_final_high'])}]"
                     if run.get("pred_final_loss") is not None else "–")
        stop = f"step {_num(run['stop_step'])}: {run['stop_reason']}" if run["status"] == "stopped" else ""
        lines.append(f"| {run['name']} | {run['status']} | {_num(run['n_params'])} | {_num(run['tokens'])} | "
                     f"{_num(run['loss'])} | {run['source']} | {predicted} | {stop} |")
    lines += ["", "Plots: `loss_vs_flops.png` (every run, its fitted law and prediction), `frontier.png` "
              "(N_opt and D_opt vs C with the bootstrap band and approaches 1–2), `schedules.png` (planned LRs). "
              "Every fitting choice is in `details.json`.", ""]
    return "\n".join(lines)
