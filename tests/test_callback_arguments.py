"""ScalingLawCallback refuses every bad argument at construction, naming it; a note for manual optimization."""

from __future__ import annotations

import pytest

from scaling_callback import ScalingLawCallback
from scaling_callback.callback.lightning_io import optimization_note
from scaling_callback.errors import InputError

BAD = [
    ("law", "chinchilla"),
    ("lr_group", 7.5),
    ("lr_group", -1),
    ("final_fit_timeout_s", -5),
    ("final_fit_timeout_s", float("nan")),
    ("fit_every_n_steps", 0),
    ("fit_every_n_steps", True),
    ("max_fit_fraction", 1.5),
    ("fit_worker", "gpu"),
    ("fit_niceness", 40),
    ("budget_on_accelerator", "yes"),
    ("measure_flops", 1),
    ("wait_for_final_fit", "always"),
    ("max_fit_points", 2),
    ("flops_per_batch", -1.0),
    ("flops_per_batch", float("inf")),
    ("tokens_per_sample", 0),
    ("val_metrics", 3),
    ("val_metrics", []),
    ("log_every_n_steps", 0),
    ("flush_every_n_steps", 0),
    ("flush_interval_s", 0),
    ("run_name", ""),
    ("sweep", 5),
    ("config", ["lr", 0.1]),
    ("store", 3.14),
    ("early_stopping", object()),
    ("first_prediction_fraction", 0.0),
    ("synchronous_stopping", "yes"),
    ("synchronous_stopping", True),  # without an early_stopping policy there is nothing to wait for
]


@pytest.mark.parametrize("name, value", BAD, ids=[f"{n}={v!r}" for n, v in BAD])
def test_bad_argument_fails_at_construction_naming_it(name, value):
    with pytest.raises(InputError) as error:
        ScalingLawCallback(**{name: value})
    message = str(error.value)
    assert name in message and "\n" not in message


def test_early_stopping_without_fits_is_refused():
    class Policy:
        def should_stop(self, **context):
            return False

    with pytest.raises(InputError, match="fit_every_n_steps"):
        ScalingLawCallback(fit_every_n_steps=None, early_stopping=Policy())


def test_good_arguments_are_accepted():
    callback = ScalingLawCallback(
        law="lldl",
        lr_group=0,
        final_fit_timeout_s=0,
        val_metrics=["val_loss"],
        first_prediction_fraction=None,
        fit_niceness=0,
        config={"lr": 0.1},
    )
    assert callback.law == "lldl" and callback.first_prediction_fraction is None


def test_optimization_note_says_what_is_recorded():
    assert optimization_note(True, 1, 0) is None
    manual = optimization_note(False, 1, 0)
    assert "manual optimization" in manual and "scheduler.step()" in manual
    several = optimization_note(False, 2, 1)
    assert "2 optimizers" in several and "2, 4" in several and "param group 1" in several
