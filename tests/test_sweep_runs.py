import pytest
import torch

from scaling_callback.errors import InputError
from scaling_callback.sweep.config import parse_config
from scaling_callback.sweep.runs import build_run, expand_grid, resolve_factory

CONFIG = {
    "model": {"factory": "tiny_lm", "args": {"vocab_size": 32, "seq_len": 16, "batch_size": 4}},
    "grid": {
        "sizes": [{"d_model": 16, "n_layers": 1}, {"d_model": 32, "n_layers": 1}],
        "tokens": [6400, 12800],
        "schedules": ["cosine", "wsd"],
        "seeds": [0],
    },
    "optimizer": {"warmup_steps": 5},
}


def test_grid_is_the_full_product_with_unique_names():
    runs = expand_grid(parse_config(CONFIG))
    assert len(runs) == 8 and len({r.name for r in runs}) == 8
    assert runs[0].name == "d_model16-n_layers1_t6.4e03_cosine_s0"


def test_peak_lr_axis_multiplies_the_grid_and_reaches_the_schedule():
    config = parse_config({**CONFIG, "grid": {**CONFIG["grid"], "peak_lrs": [0.003, 0.0005]}})
    runs = expand_grid(config)
    assert len(runs) == 16 and len({r.name for r in runs}) == 16
    assert runs[1].name == "d_model16-n_layers1_t6.4e03_cosine_lr0.0005_s0" and runs[1].peak_lr == 0.0005
    assert build_run(config, runs[1]).module.schedule.peak_lr == pytest.approx(0.0005)


def test_bad_peak_lr_is_named():
    with pytest.raises(InputError, match=r"grid.peak_lrs\[1\]"):
        parse_config({**CONFIG, "grid": {**CONFIG["grid"], "peak_lrs": [0.003, -1.0]}})


def test_tiny_lm_factory_sets_steps_from_tokens():
    config = parse_config(CONFIG)
    setup = build_run(config, expand_grid(config)[0])
    assert setup.tokens_per_step == 64 and setup.max_steps == 100
    assert setup.module.schedule.max_steps == 100 and setup.module.schedule.kind == "cosine"


def test_plrf_factory_builds_a_module():
    config = parse_config(
        {
            "model": {"factory": "plrf", "args": {"v": 64}},
            "grid": {"sizes": [{"d": 8}], "tokens": [800]},
            "optimizer": {"warmup_steps": 0, "peak_lr": 0.01},
        }
    )
    setup = build_run(config, expand_grid(config)[0])
    assert setup.max_steps == 100 and setup.tokens_per_step == 8


def test_unknown_and_unimportable_factories_are_named():
    with pytest.raises(InputError, match="unknown factory 'resnet'"):
        resolve_factory("resnet")
    with pytest.raises(InputError, match="cannot import 'no_such_module'"):
        resolve_factory("no_such_module:make")
    with pytest.raises(InputError, match="has no callable 'nothing_here'"):
        resolve_factory("toy_models.tiny_lm:nothing_here")


def test_factory_rejecting_arguments_is_named():
    config = parse_config(CONFIG | {"model": {"factory": "tiny_lm", "args": {"colour": "red"}}})
    with pytest.raises(InputError, match="factory 'tiny_lm' rejected run"):
        build_run(config, expand_grid(config)[0])


def test_an_evaluation_gives_every_run_one_held_out_set_of_at_least_the_tokens_asked():
    config = parse_config(CONFIG | {"evaluation": {"tokens": 1000}})
    runs = expand_grid(config)
    first, other = build_run(config, runs[0]), build_run(config, runs[-1])
    assert first.eval_tokens == 1005  # 67 sequences of 15 predicted tokens, in one batch
    held_out = [list(setup.datamodule.val_dataloader()) for setup in (first, other)]
    assert all(torch.equal(a, b) for a, b in zip(*held_out))  # the same tokens whatever the run
    assert parse_config(CONFIG).evaluation.tokens == 0 and build_run(parse_config(CONFIG), runs[0]).eval_tokens == 0


def test_a_factory_without_a_held_out_set_is_refused_when_an_evaluation_is_asked():
    config = parse_config(
        {
            "model": {"factory": "plrf", "args": {"v": 64}},
            "grid": {"sizes": [{"d": 8}], "tokens": [800]},
            "evaluation": {"tokens": 1000},
        }
    )
    with pytest.raises(InputError, match="rejected run"):  # plrf takes no eval_tokens
        build_run(config, expand_grid(config)[0])


def test_lr_width_reference_scales_the_peak_lr_as_one_over_width_and_records_it():
    config = parse_config(
        CONFIG | {"model": CONFIG["model"] | {"args": CONFIG["model"]["args"] | {"lr_width_reference": 32}}}
    )
    runs = expand_grid(config)
    narrow, wide = build_run(config, runs[0]), build_run(config, runs[-1])  # d_model 16 and 32
    assert narrow.module.schedule.peak_lr == pytest.approx(2 * wide.module.schedule.peak_lr)
    assert wide.module.schedule.peak_lr == pytest.approx(config.optimizer.peak_lr)
    assert narrow.recorded == {"lr_width_reference": 32, "effective_peak_lr": pytest.approx(0.006)}
