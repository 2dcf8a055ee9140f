import copy
import pickle

import pytest
import torch

from toy_models.schedules import ScheduleSpec, lightning_optimizer_config, lr_at, lr_multiplier, make_scheduler


def test_warmup_is_linear_and_skips_the_zero_step():
    spec = ScheduleSpec(kind="constant", peak_lr=1.0, max_steps=100, warmup_steps=4)
    assert lr_at(spec, 6) == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def test_cosine_ends_at_the_final_fraction_on_the_last_step():
    spec = ScheduleSpec(kind="cosine", peak_lr=2.0, max_steps=101, warmup_steps=0, final_lr_fraction=0.1)
    lrs = lr_at(spec, 101)
    assert lrs[0] == pytest.approx(2.0)
    assert lrs[50] == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))
    assert lrs[100] == pytest.approx(0.2)
    assert lr_multiplier(spec)(10_000) == pytest.approx(0.1)  # held after max_steps


def test_wsd_and_two_stage_shapes():
    wsd = lr_at(ScheduleSpec(kind="wsd", peak_lr=1.0, max_steps=11, final_lr_fraction=0.0, decay_fraction=0.5), 11)
    assert wsd[:6] == pytest.approx([1.0] * 6) and wsd[-1] == pytest.approx(0.0)
    assert wsd[8] == pytest.approx(0.4)
    two = lr_at(
        ScheduleSpec(kind="two_stage", peak_lr=1.0, max_steps=10, final_lr_fraction=0.3, switch_fraction=0.5), 10
    )
    assert two == pytest.approx([1.0] * 5 + [0.3] * 5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "linear"}, "kind"),
        ({"peak_lr": 0.0}, "peak_lr"),
        ({"max_steps": 0}, "max_steps"),
        ({"warmup_steps": 1000}, "warmup_steps"),
        ({"final_lr_fraction": 1.5}, "final_lr_fraction"),
    ],
)
def test_spec_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ScheduleSpec(**kwargs)


def test_lambda_lr_follows_the_spec_per_step_and_survives_copies():
    spec = ScheduleSpec(kind="cosine", peak_lr=0.5, max_steps=20, warmup_steps=3, final_lr_fraction=0.2)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=spec.peak_lr)
    scheduler = make_scheduler(optimizer, spec)
    seen = []
    for _ in range(20):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx(lr_at(spec, 20))
    pickle.loads(pickle.dumps(lr_multiplier(spec)))
    copy.deepcopy(scheduler)
    config = lightning_optimizer_config(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5), spec)
    assert config["lr_scheduler"]["interval"] == "step"
    with pytest.raises(ValueError, match="differs"):
        make_scheduler(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), spec)
