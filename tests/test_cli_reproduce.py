import json

import numpy as np
import pytest

from scaling_callback.cli import main
from scaling_callback.cli.reproduce import format_table
from scaling_callback.reproduce import suite
from scaling_callback.reproduce.common import Row, coverage_note
from scaling_callback.reproduce.exact_experiments import FrontierConfig, MRSConfig
from scaling_callback.reproduce.lightning_experiment import LightningConfig

TINY = suite.SuiteConfig(
    mrs=MRSConfig(
        low=16,
        high=64,
        latent_factor=8,
        seeds=3,
        n_bootstrap=20,
        double_descent_samples=16,
        double_descent_latent=128,
        plateau_latent=32,
    ),
    gradient_flow=FrontierConfig(low=8, high=64, v_factor=4, seeds=3, n_bootstrap=10),
    sgd=FrontierConfig(low=8, high=64, v_factor=4, seeds=3, n_bootstrap=10),
    lightning=LightningConfig(sizes=(4, 8, 16, 32, 64), v=128, batch_size=8, steps=200, n_bootstrap=20),
    sgd_steps=1500,
)


@pytest.fixture
def tiny_quick(monkeypatch):
    monkeypatch.setitem(suite.CONFIGS, "quick", TINY)


def test_json_rows_and_figures(tiny_quick, tmp_path, capsys):
    assert main(["reproduce", "random-features", "--quick", "--json", "--out", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total_seconds"] > 0
    experiments = {row["experiment"] for row in report["rows"]}
    assert experiments == {"E1 MRS", "E2 gradient flow", "E3 SGD recursion", "E4 Lightning PLRF"}
    for row in report["rows"]:
        assert set(row) == {"experiment", "quantity", "theory", "measured", "ci_low", "ci_high", "seconds", "note"}
        assert row["note"]
    mrs_rows = [row for row in report["rows"] if row["experiment"] == "E1 MRS"]
    assert all(abs(row["measured"] - row["theory"]) < 0.1 for row in mrs_rows)
    for name in ("e1_mrs.png", "e2_gradient_flow.png", "e3_sgd_recursion.png", "e4_lightning_plrf.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_table_output_for_a_subset(tiny_quick, capsys):
    assert main(["reproduce", "random-features", "--quick", "--only", "e1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:7] == ["experiment", "quantity", "theory", "measured", "ci_low", "ci_high", "seconds"]
    assert len([line for line in out if line.startswith("E1 MRS")]) == 4
    assert out[-1].startswith("total_seconds:")


def test_bad_arguments_exit_with_status_2(capsys, tmp_path):
    assert main(["reproduce", "random-features", "--only", "E9"]) == 2
    assert "--only must name experiments" in capsys.readouterr().err
    a_file = tmp_path / "file.png"
    a_file.write_text("x")
    assert main(["reproduce", "random-features", "--only", "E1", "--out", str(a_file)]) == 2
    with pytest.raises(SystemExit):
        main(["reproduce", "other-suite"])


def test_coverage_note_explains_bias_with_sign():
    assert coverage_note(1.0, 0.99, (0.98, 1.01), "src").startswith("interval contains theory")
    note = coverage_note(1.0, 0.99, (0.985, 0.995), "src", finite_size_value=0.99)
    assert "finite-size bias, negative" in note
    note = coverage_note(1.0, 0.998, (0.997, 0.999), "src", finite_size_value=0.995)  # smaller gap than theory's
    assert "finite-size bias, negative" in note
    assert "is not the finite-size one" in coverage_note(1.0, 1.01, (1.005, 1.02), "src", finite_size_value=0.99)
    note = coverage_note(0.75, 0.8, (0.78, 0.82), "src", trend=(("d<=256", 0.85), ("d<=512", 0.8)))
    assert "positive" in note and "shrinking" in note


def test_format_table_handles_nan():
    table = format_table([Row("E", "q", 1.0, np.nan, np.nan, np.nan, 0.5, "fit failed")], 1.0)
    assert "nan" in table and table.endswith("total_seconds: 1.0")
