"""``summary.md``: the sweep's outcome in words and tables, readable without the plots or the code."""

from __future__ import annotations

import math


def _num(value, digits: int = 4) -> str:
    """``digits`` significant digits; counts and budgets (>= 1e5) and tiny values in short scientific form."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if abs(value) >= 1e5 or 0 < abs(value) < 1e-3:
        mantissa, exponent = f"{value:.3e}".split("e")
        return f"{float(mantissa):.3g}e{int(exponent)}"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    return f"{value:.{digits}g}"


def _exponent(value) -> str:
    """An exponent or a fraction of one: three decimals."""
    return "–" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _interval(pair, format_value=_num) -> str:
    return f"[{format_value(pair[0])}, {format_value(pair[1])}]" if pair else "(no bootstrap)"


def summary_markdown(sweep: str, summary: dict, details: dict) -> str:
    """Markdown text of the report."""
    front, rec = summary["frontier"], summary["recommendation"]
    lines = [
        f"# Sweep `{sweep}`",
        "",
        f"- **Runs**: {summary['runs']} ({summary['finished']} trained to their planned end, "
        f"{summary['stopped']} stopped early by the stopping policy).",
        f"- **Compute saved**: {summary['compute_saved']:.1%} of the sweep's planned compute (every run trained "
        "to its planned end) was not spent, because the stopped runs ended early.",
    ]
    lines += _finals_lines(summary.get("finals") or {})
    advice = summary.get("advice") or {}
    if front["a"] is not None:
        lines += [
            "",
            "## Compute-optimal frontier (Chinchilla approach 3)",
            "",
            "L(N, D) = E + A/N^α + B/D^β fitted to the best final loss of each (N, D) (measured; a stopped "
            f"run's forecast only where no run of that N and D finished), N = {details['n_convention']} parameters, "
            f"D = planned tokens; compute: {front.get('flop_convention') or 'C = 6ND'}.",
            "",
        ]
        if advice.get("text"):
            lines += [advice["text"], ""]
        lines += [
            "| quantity | value | 95 % bootstrap interval | meaning |",
            "|---|---|---|---|",
            f"| a | {_exponent(front['a'])} | {_interval(front['a_ci'], _exponent)} "
            "| N_opt ∝ C^a: how model size should grow with compute |",
            f"| b | {_exponent(front['b'])} | {_interval(front['b_ci'], _exponent)} "
            "| D_opt ∝ C^b: how data should grow (a + b = 1) |",
            f"| E | {_num(front['E'])} | | irreducible loss |",
            f"| α | {_exponent(front['alpha'])} | | loss exponent in parameters |",
            f"| β | {_exponent(front['beta'])} | | loss exponent in tokens |",
            "",
            "## Recommendation for a larger budget",
            "",
            f"At C = {_num(rec['flops'])} FLOPs: train N_opt ≈ {_num(rec['n_opt'])} parameters on "
            f"D_opt ≈ {_num(rec['d_opt'])} tokens; expected loss {_num(rec['loss'])} "
            f"(95 % interval {_interval(rec['loss_ci'])}). This extrapolates the fitted law beyond the sweep: "
            "the further C lies from the largest run, the wider the interval should be read.",
        ]
    else:
        lines += ["", advice.get("text") or "No compute-optimal fit."]
    approaches = details.get("approaches") or {}
    if approaches:
        lines += [
            "",
            "## The three approaches side by side",
            "",
            "| approach | a | note |",
            "|---|---|---|",
            f"| 3: parametric fit L(N, D) | {_exponent(front['a'])} | |",
        ]
        for key, label in (
            ("approach_1", "1: lower envelope of loss-vs-FLOP curves"),
            ("approach_2", "2: IsoFLOP parabolas"),
        ):
            record = approaches.get(key) or {}
            note = record.get("note") or "; ".join(record.get("warnings", []))
            lines.append(f"| {label} | {_exponent(record.get('a'))} | {_shorten(note)} |")
    if summary.get("warnings") and front["a"] is not None:
        lines += [
            "",
            f"The compute-optimal fitter's own diagnostics ({len(summary['warnings'])}) are in `details.json` "
            "(`frontier_fit.warnings`).",
        ]
    lines += [
        "",
        "## Runs",
        "",
        "| run | status | N | D (planned) | final loss ± SE | source | predicted final [interval] | stop |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in details.get("runs", []):
        predicted = (
            f"{_num(run['pred_final_loss'])} [{_num(run['pred_final_low'])}, {_num(run['pred_final_high'])}]"
            if run.get("pred_final_loss") is not None
            else "–"
        )
        stop = (
            f"step {int(run['stop_step'])}: {run['stop_reason']}"
            if run["status"] == "stopped" and run.get("stop_step")
            else ""
        )
        lines.append(
            f"| {run['name']} | {run['status']} | {_num(run['n_params'])} | {_num(run['tokens'])} | "
            f"{_with_sd(run['loss'], run.get('loss_sd'))} | {run['source']} | {predicted} | {stop} |"
        )
    lines += [
        "",
        "Plots: `loss_vs_flops.png` (every run, its fitted law and prediction), `frontier.png` "
        "(N_opt and D_opt vs C with the bootstrap band and approaches 1–2), `schedules.png` (planned LRs). "
        "Every fitting choice is in `details.json`.",
        "",
    ]
    return "\n".join(lines)


def _count(value) -> str:
    """A whole count with thousands separators ('200,694'), or '–'."""
    return "–" if value is None or not math.isfinite(value) else f"{int(value):,}"


def _with_sd(loss, sd) -> str:
    """'3.512 ± 0.0029' (the standard error to two significant digits), or the loss alone without one."""
    if sd is None or (isinstance(sd, float) and not math.isfinite(sd)):
        return _num(loss)
    return f"{_num(loss)} ± {sd:.2g}"


def _finals_lines(finals: dict) -> list[str]:
    """The **Finals** bullet: how the finished runs' final losses were measured and how precise they are."""
    evaluated, observed = finals.get("evaluated"), finals.get("observed")
    parts = []
    if evaluated:
        target = evaluated.get("target_sd")
        met = evaluated.get("meets_target")
        precision = f"standard error at most {_num(evaluated['sd_max'], 2)}"
        if target is not None and met is not None:
            precision += (
                f", within the target {_num(target, 2)}"
                if met
                else f", above the target {_num(target, 2)}: evaluate on at least "
                f"{_count(evaluated['tokens_for_target'])} tokens (evaluation.tokens) to reach it"
            )
        parts.append(
            f"{evaluated['n']} measured on the same {_count(evaluated['tokens'])} held-out tokens at their last step "
            f"({precision})"
        )
    if observed:
        parts.append(
            f"{observed['n']} from the training loss smoothed at the last step (no held-out evaluation; "
            f"standard error {_num(observed['sd_median'], 2)} typical, up to {_num(observed['sd_max'], 2)}: "
            "add `evaluation: {tokens: ...}` to the config for finals a frontier can rest on)"
        )
    return [f"- **Finals** of the finished runs: {'; '.join(parts)}."] if parts else []


def _shorten(note: str, limit: int = 240) -> str:
    """A table cell: the note's first ``limit`` characters (the full text is in details.json)."""
    return note if len(note) <= limit else note[: limit - 1].rstrip() + "… (details.json has the rest)"
