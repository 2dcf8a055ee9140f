"""The sweep's queue: cheapest first; with the same-cell objective, every cell's first configuration first."""

from __future__ import annotations

from scaling_callback.sweep.config import parse_config
from scaling_callback.sweep.runner import run_costs, run_order
from scaling_callback.sweep.runs import expand_grid

CONFIG = {
    "model": {"factory": "tiny_lm"},
    "grid": {"sizes": [{"d_model": 8}, {"d_model": 16}], "tokens": [1000, 2000], "peak_lrs": [0.01, 0.001]},
}


def queue(objective: str) -> list[tuple]:
    config = parse_config(CONFIG | {"stopping": {"objective": objective}})
    order = run_order(config, run_costs(config))
    runs = sorted(expand_grid(config), key=lambda r: order[r.name])
    return [(r.size["d_model"], r.tokens, r.peak_lr) for r in runs]


def test_the_queue_is_cheapest_first():
    runs = queue("frontier")
    costs = [tokens * (1 + (size == 16)) for size, tokens, _ in runs]
    assert costs == sorted(costs) and runs[:2] == [(8, 1000, 0.01), (8, 1000, 0.001)]


def test_with_the_same_cell_objective_every_cell_has_its_first_lr_trained_before_its_second():
    runs = queue("same_size_and_budget")
    assert [lr for _, _, lr in runs] == [0.01] * 4 + [0.001] * 4  # the second pass, alternatives, after the first
    assert runs[:4] == [(8, 1000, 0.01), (8, 2000, 0.01), (16, 1000, 0.01), (16, 2000, 0.01)]  # each pass by cost
