import pytest

from scaling_callback.errors import InputError
from scaling_callback.sweep.config import load_config, parse_config

MINIMAL = {"model": {"factory": "tiny_lm"}, "grid": {"sizes": [{"d_model": 16}]}}


def test_minimal_config_gets_defaults():
    config = parse_config(MINIMAL)
    assert config.workers == 1 and config.stopping.policy == "law" and config.grid.schedules == ["cosine"]
    assert config.evaluation.tokens == 0 and config.evaluation.target_sd == 0.003  # no held-out evaluation unless asked


def test_yaml_scientific_notation_is_a_number(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {factory: tiny_lm}\ngrid: {sizes: [{d_model: 16}]}\noptimizer: {peak_lr: 3e-3}\n")
    assert load_config(path).optimizer.peak_lr == 0.003


@pytest.mark.parametrize(
    "change, message",
    [
        ({"bogus": 1}, "config key 'bogus': unknown key"),
        ({"grid": {"sizes": [{"d_model": 16}], "colours": [1]}}, "config key 'grid.colours': unknown key"),
        ({"workers": "two"}, "config key 'workers': expected an integer, got 'two'"),
        ({"optimizer": {"peak_lr": "fast"}}, "config key 'optimizer.peak_lr': expected a number"),
        (
            {"grid": {"sizes": [{"d_model": 16}], "schedules": ["linear"]}},
            "config key 'grid.schedules[0]': unknown schedule",
        ),
        ({"grid": {"sizes": [{"d_model": 16}], "tokens": [1000, -5]}}, "config key 'grid.tokens[1]': must be positive"),
        ({"grid": {"sizes": []}}, "config key 'grid.sizes': needs at least one"),
        ({"model": {}}, "config key 'model.factory': missing"),
        ({"stopping": {"policy": "oracle"}}, "config key 'stopping.policy': unknown policy 'oracle'"),
        ({"callback": {"fit_every_n_steps": 0}}, "config key 'callback.fit_every_n_steps': must be >= 1"),
        ({"stopping": {"policy": "none", "synchronous": True}}, "config key 'stopping.synchronous'"),
        ({"stopping": {"synchronous": "yes"}}, "config key 'stopping.synchronous': expected true/false"),
        ({"evaluation": {"tokens": -1}}, "config key 'evaluation.tokens': must be >= 0"),
        ({"evaluation": {"every_n_steps": 1.5}}, "config key 'evaluation.every_n_steps': expected an integer"),
        ({"evaluation": {"target_sd": 0}}, "config key 'evaluation.target_sd': must be in (0, inf]"),
        ({"evaluation": {"size": 10}}, "config key 'evaluation.size': unknown key"),
    ],
)
def test_bad_keys_and_values_are_named(change, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_config(MINIMAL | change)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(InputError, match="no such config file"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_config(bad)


ONE_RUN = {
    "model": {"factory": "tiny_lm"},
    "grid": {
        "design": "one_run_per_size",
        "sizes": [{"d_model": 16}, {"d_model": 32}],
        "tokens": [1000, 4000, 2000],
        "schedules": ["wsd"],
    },
    "stopping": {"policy": "none"},
}


def test_one_run_per_size_trains_each_size_once_to_the_largest_budget():
    from scaling_callback.sweep.runs import expand_grid

    config = parse_config(ONE_RUN)
    assert config.grid.forecast_schedule == "wsd"
    runs = expand_grid(config)
    assert [(r.size["d_model"], r.tokens, r.schedule) for r in runs] == [(16, 4000.0, "wsd"), (32, 4000.0, "wsd")]
    assert len(expand_grid(parse_config(ONE_RUN | {"grid": ONE_RUN["grid"] | {"design": "grid"}}))) == 6


@pytest.mark.parametrize(
    "grid, stopping, message",
    [
        ({"design": "half_grid"}, "none", "config key 'grid.design': unknown design 'half_grid'"),
        ({"schedules": ["cosine"]}, "none", "config key 'grid.schedules[0]': design one_run_per_size"),
        ({"sizes": [{"d_model": 16}]}, "none", "config key 'grid.sizes': design one_run_per_size needs at least two"),
        ({}, "law", "config key 'stopping.policy': design one_run_per_size needs every size's run whole"),
        ({"forecast_schedule": "linear"}, "none", "config key 'grid.forecast_schedule': must be one of wsd, cosine"),
    ],
)
def test_one_run_per_size_bad_settings_are_named(grid, stopping, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_config(ONE_RUN | {"grid": ONE_RUN["grid"] | grid, "stopping": {"policy": stopping}})
