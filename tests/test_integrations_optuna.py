"""Optuna across processes: three processes optimise one study on one RDB storage, pruned by our PolicyPruner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from optuna_worker_script import make_pruner  # noqa: E402

from scaling_callback.errors import InputError  # noqa: E402
from scaling_callback.integrations.optuna import OptunaReporter  # noqa: E402
from scaling_callback.stopping import make_policy  # noqa: E402
from scaling_callback.stopping.optuna_pruner import DECISION_ATTR  # noqa: E402
from scaling_callback.store import SweepStore  # noqa: E402

WIDTHS = [64, 4, 32, 8, 16, 4, 64, 8, 16]  # dealt round-robin: every process gets a mix of good and bad widths
N_PROCESSES = 3


@pytest.mark.slow
def test_three_processes_share_one_study_and_our_pruner_decides_as_the_law_policy(store_url, tmp_path):
    # On SQLite the study gets its own file: Optuna's storage and the sweep store writing one SQLite file from
    # three processes made Optuna retry a commit that had landed ("Cannot tell a COMPLETE trial"); on a
    # server both share one database, as a cluster would.
    storage_url = f"sqlite:///{tmp_path / 'optuna.sqlite'}" if store_url.startswith("sqlite") else store_url
    optuna.create_study(study_name="widths", storage=storage_url, direction="minimize")
    script = Path(__file__).with_name("optuna_worker_script.py")
    root = Path(__file__).resolve().parents[1]
    env = os.environ | {
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), storage_url, "widths", widths, str(tmp_path), store_url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for widths in (",".join(map(str, WIDTHS[i::N_PROCESSES])) for i in range(N_PROCESSES))
    ]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0] * N_PROCESSES, [out[-3000:] for out in outputs]

    study = optuna.load_study(study_name="widths", storage=storage_url)
    trials = study.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(len(WIDTHS)))  # every trial present once
    assert all("d" in t.params for t in trials), [(t.number, t.state, t.params, t.system_attrs) for t in trials]
    assert sorted(t.params["d"] for t in trials) == sorted(WIDTHS)
    states = {t.number: t.state for t in trials}
    assert set(states.values()) <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, "the law policy pruned nothing: widths 4 and 8 end far above width 64"
    best = min((t for t in trials if t.state == optuna.trial.TrialState.COMPLETE), key=lambda t: t.value)
    assert best.params["d"] == 64

    store = SweepStore(store_url)  # the callback's store
    runs = store.runs("widths").set_index("name")
    assert sorted(runs.index) == sorted(f"trial-{t.number}" for t in trials)
    pruner = make_pruner()
    for trial in trials:
        run = runs.loc[f"trial-{trial.number}"]
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert run.status == "finished"
            continue
        decision = trial.system_attrs[DECISION_ATTR]  # marked with our decision and its reason
        last = max(trial.intermediate_values)
        assert decision["stop"] and decision["reason"] and decision["step"] == last < 300
        assert run.status == "stopped" and run.stop_reason == decision["reason"] and run.stop_step == last
        assert store.decisions(f"trial-{trial.number}").reason.tolist()[-1] == decision["reason"]
        # the same policy, fresh, on the views the pruner saw (read back from the storage) decides alike
        fresh = make_policy("law")
        pairs = pruner.replay(study, trial.number, fresh)
        assert pairs
        # alike, check by check, until a probability falls on the other side of a decision boundary (threshold^j
        # counts as j confirmations): the live policy learned its pooled priors and backtest calibration in the order
        # its process saw the other trials end, which a fresh replay of one trial does not repeat, so its P differs by
        # a few hundredths (measured over repeated runs of this test) and a P that near a boundary may fall either way
        boundaries = [fresh.threshold**j for j in range(1, fresh.confirmations + 1)]
        crossed = False
        for stored, again in pairs:
            p, q = stored["probability"], again.probability
            crossed = crossed or (p is not None and q is not None and any((p < b) != (q < b) for b in boundaries))
            if not crossed:
                assert stored["stop"] == again.stop, (stored, again)
    store.close()


def test_report_interval_is_checked():
    study = optuna.create_study()
    with pytest.raises(InputError, match="report_every_n_steps"):
        OptunaReporter(study.ask(), report_every_n_steps=0)
