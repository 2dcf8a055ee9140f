import ast
from pathlib import Path

import numpy as np
import pytest

from scaling_callback.laws.loss_curves import CURVE_LAWS
from scaling_callback.laws.lr_terms import lr_terms
from scaling_callback.laws.schedule import Schedule
from tests.curve_factory import TRUE_MPL, WARMUP, per_step_lrs

PARAMS = {
    "mpl": [TRUE_MPL[n] for n in CURVE_LAWS["mpl"].param_names],
    "opl": [3.0, 0.6, 0.45],
    "lldl": [3.0, 0.6, 0.45, 400.0],
    "momentum": [3.0, 0.6, 0.45, 200.0, 0.995],
}


@pytest.fixture(scope="module")
def terms():
    schedule = Schedule.from_per_step(per_step_lrs("wsd"), WARMUP)
    return lr_terms([schedule], [np.arange(WARMUP, 4001, 100)])


@pytest.mark.parametrize("name", sorted(CURVE_LAWS))
def test_jacobian_matches_finite_differences(name, terms):
    law = CURVE_LAWS[name]
    params = np.array(PARAMS[name])
    _, jacobian = law.loss_and_jacobian(params, terms)
    for i in range(params.size):
        step = 1e-6 * max(abs(params[i]), 1e-3)
        up, down = params.copy(), params.copy()
        up[i] += step
        down[i] -= step
        numeric = (law.loss(up, terms) - law.loss(down, terms)) / (2 * step)
        assert np.allclose(jacobian[i], numeric, rtol=1e-5, atol=1e-8), law.param_names[i]


def test_mpl_matches_the_paper_formula_on_a_small_schedule():
    lrs = per_step_lrs("cosine", total=300, warmup=20)
    schedule = Schedule.from_per_step(lrs, 20)
    p = TRUE_MPL
    t = 280
    eta = np.concatenate([[schedule.peak_lr], schedule.lrs])
    s1 = schedule.lrs[:t].sum()
    drop = sum(
        (eta[k - 1] - eta[k]) * (1 - (p["C"] * eta[k] ** -p["gamma"] * eta[k : t + 1].sum() + 1) ** -p["beta"])
        for k in range(1, t + 1)
    )
    expected = p["L0"] + p["A"] * (s1 + schedule.warmup_sum) ** -p["alpha"] - p["B"] * drop
    law = CURVE_LAWS["mpl"]
    value = law.loss(np.array([p[n] for n in law.param_names]), lr_terms([schedule], [np.array([t + 20])]))
    assert value[0] == pytest.approx(expected, rel=1e-12)


def test_momentum_law_matches_its_recursion():
    lrs = per_step_lrs("wsd", total=300, warmup=20)
    schedule = Schedule.from_per_step(lrs, 20)
    lam, c = 0.99, 150.0
    eta = np.concatenate([[schedule.peak_lr], schedule.lrs])
    m, s2 = 0.0, 0.0
    for i in range(1, 281):
        m = lam * m + (eta[i - 1] - eta[i])
        s2 += m
    expected = 3.0 + 0.6 * (schedule.lrs[:280].sum() + 20 * schedule.peak_lr) ** -0.45 - c * s2
    law = CURVE_LAWS["momentum"]
    value = law.loss(np.array([3.0, 0.6, 0.45, c, lam]), lr_terms([schedule], [np.array([300])]))
    assert value[0] == pytest.approx(expected, rel=1e-10)


def test_blocked_terms_are_accurate_for_fitting():
    schedule = Schedule.from_per_step(per_step_lrs("cosine"), WARMUP)
    steps = np.arange(WARMUP, 4001, 40)
    law = CURVE_LAWS["mpl"]
    params = np.array(PARAMS["mpl"])
    exact = law.loss(params, lr_terms([schedule], [steps]))
    blocked = law.loss(params, lr_terms([schedule], [steps], max_blocks=128))
    assert np.max(np.abs(exact - blocked)) < 1e-4


def test_laws_import_no_torch():
    for path in Path("scaling_callback/laws").glob("*.py"):
        tree = ast.parse(path.read_text())
        names = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
        names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert not any(n.split(".")[0] in {"torch", "lightning", "scipy"} for n in names), path
