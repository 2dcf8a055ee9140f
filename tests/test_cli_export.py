"""``scaling-callback export``: a store's runs in the long format."""

from __future__ import annotations

import pandas as pd
import pytest

from scaling_callback.cli import main
from scaling_callback.store import SweepStore


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "sweep.sqlite"
    opened = SweepStore(path)
    for sweep, name, scale in (("width", "w64", 1.0), ("width", "w128", 0.8), ("depth", "d4", 0.9)):
        opened.register_run(name, sweep=sweep, n_params=1000)
        opened.add_points(
            name,
            [
                {
                    "step": s,
                    "samples": 8 * s,
                    "flops": 1e6 * s,
                    "lr": 1e-3,
                    "lr_sum": 1e-3 * s,
                    "loss": scale * (2 + 1 / s),
                }
                for s in range(1, 11)
            ],
        )
        opened.add_evals(name, 10, {"val_loss": scale * 2.05})
    opened.close()
    return path


def test_sweep_to_csv_and_run_to_parquet(store, tmp_path, capsys):
    assert main(["export", str(store), "--sweep", "width"]) == 0
    from io import StringIO

    frame = pd.read_csv(StringIO(capsys.readouterr().out))
    assert frame.groupby("run").size().to_dict() == {"w64": 10, "w128": 10}
    assert list(frame.columns[:8]) == ["run", "step", "loss", "lr", "lr_sum", "tokens", "flops", "samples"]
    assert frame.loc[frame["step"] == 10, "val_loss"].tolist() == pytest.approx([2.05, 0.8 * 2.05])
    pytest.importorskip("pyarrow")
    out = tmp_path / "d4.parquet"
    assert main(["export", str(store), "--run", "d4", "--format", "parquet", "--output", str(out)]) == 0
    parquet = pd.read_parquet(out)
    assert parquet["run"].unique().tolist() == ["d4"] and parquet["loss"].iloc[0] == pytest.approx(0.9 * 3)


def test_bad_requests_exit_2_and_write_nothing(store, tmp_path, capsys):
    out = tmp_path / "x.csv"
    assert main(["export", str(store), "--run", "absent", "--output", str(out)]) == 2
    assert "no run named 'absent'" in capsys.readouterr().err and not out.exists()
    assert main(["export", str(tmp_path / "none.sqlite"), "--all"]) == 2
    assert main(["export", str(store), "--all", "--format", "parquet"]) == 2  # parquet needs a file
    assert main(["export", str(store), "--all", "--output", str(tmp_path / "no" / "dir.csv")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 3
    assert not any(p.name.endswith(".part") or p.suffix == ".csv" for p in tmp_path.iterdir())
    assert not (tmp_path / "none.sqlite").exists()
