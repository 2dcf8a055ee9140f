"""Every CLI on bad files and configs: exit 2, one line naming the file (or key) and the problem, nothing written.

Each case runs the real entry point in-process; a few run as a subprocess, where a Python
traceback would show. The output folder and the bad file itself must be untouched afterwards.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scaling_callback.cli import main
from scaling_callback.store import SweepStore

# ------------------------------------------------------------------ bad files


def _bad_files(root: Path) -> dict[str, Path]:
    """One of each kind of garbage a user could point a reader at."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {
        "binary": bytes(rng.integers(0, 256, 4096, dtype=np.uint8)),
        "non_utf8": "step,lr,loss\n1,0.1,caf\xe9\n".encode("latin-1"),
        "utf16": "step,lr,loss\n1,0.1,3.0\n2,0.1,2.9\n".encode("utf-16"),
        "empty": b"",
        "png": b"\x89PNG\r\n\x1a\n" + bytes(200),
        "ragged_csv": b'a,b\n1,2,3,4\n"unterminated\n',
        "header_only": b"step,lr,loss\n",
        "text": b"these are my notes, not a table\n",
        "json": b'{"step": [1, 2], "loss": [3, 2]}',
        "words_csv": b"step,lr,loss\none,two,three\nfour,five,six\n",
        "truncated_sqlite": b"SQLite format 3\x00" + bytes(rng.integers(0, 256, 500, dtype=np.uint8)),
        "huge": b"step,lr,loss\n" + b"1,0.1,3.0\n" * 300_000,  # 3 MB, over the 1 MB limit the tests set
    }
    paths = {}
    for name, data in files.items():
        path = root / name
        path.write_bytes(data)
        paths[name] = path
    paths["directory"] = root / "a_directory"
    paths["directory"].mkdir()
    (paths["directory"] / "inside.txt").write_text("x")
    paths["missing"] = root / "does_not_exist.csv"
    paths["dangling_link"] = root / "dangling"
    paths["dangling_link"].symlink_to(root / "nowhere")
    foreign = root / "foreign.sqlite"
    with contextlib.closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER, path TEXT)")
        conn.commit()
    paths["foreign_sqlite"] = foreign
    return paths


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


COMMANDS = {
    "fit-curves": lambda p: ["fit-curves", "--warmup-steps", "0", "--fit", str(p)],
    "fit-curves --from lightning-csv": lambda p: [
        "fit-curves",
        "--warmup-steps",
        "0",
        "--from",
        "lightning-csv",
        "--fit",
        str(p),
    ],
    "fit-curves --from wandb": lambda p: ["fit-curves", "--warmup-steps", "0", "--from", "wandb", "--fit", str(p)],
    "fit-curves --from store": lambda p: ["fit-curves", "--warmup-steps", "0", "--from", "store", "--fit", str(p)],
    "replay-stopping": lambda p: ["replay-stopping", str(p)],
    "fit-compute": lambda p: ["fit-compute", str(p), "--params-col", "N", "--tokens-col", "D", "--loss-col", "loss"],
    "fit-loss-to-loss": lambda p: ["fit-loss-to-loss", str(p), "--x-col", "a", "--y-col", "b"],
    "export": lambda p: ["export", str(p), "--all"],
    "report --store": lambda p: ["report", str(p.parent / "out"), "--store", str(p)],
    "report DIR": lambda p: ["report", str(p)],
    "sweep": lambda p: ["sweep", str(p), "--out", str(p.parent / "out")],
}


@pytest.fixture
def bad_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALING_CALLBACK_MAX_FILE_MB", "1")
    monkeypatch.chdir(tmp_path)
    return _bad_files(tmp_path / "bad")


def _assert_refused(argv: list[str], root: Path, named: str) -> None:
    out_dir = root / "out"
    before = _snapshot(root)
    code, out, err = _run(argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"{argv}: exit {code}, stdout {out[:200]!r}, stderr {err[:300]!r}"
    assert len(lines) == 1, f"{argv}: {err!r}"
    assert "Traceback" not in err and "internal error" not in err
    assert named in lines[0], f"{argv}: {lines[0]!r} does not name {named!r}"
    assert _snapshot(root) == before, f"{argv}: files changed"
    assert not out_dir.exists() or not any(out_dir.iterdir()), f"{argv}: wrote into the output folder"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_cli_refuses_every_bad_file(command, bad_files):
    (next(iter(bad_files.values())).parent / "out").mkdir(exist_ok=True)  # an empty output folder to keep empty
    for kind, path in bad_files.items():
        if command == "report DIR" and kind == "directory":
            named = "sweep.sqlite"  # a folder without a store: the message names what is missing
        else:
            named = path.name
        _assert_refused(COMMANDS[command](path), path.parent, named)


def test_a_foreign_or_empty_sqlite_is_not_turned_into_a_store(bad_files, tmp_path):
    empty = tmp_path / "bad" / "new.sqlite"
    for path in (bad_files["foreign_sqlite"], empty):
        for argv in (["export", str(path), "--all"], ["report", str(tmp_path / "bad" / "out"), "--store", str(path)]):
            code, _, err = _run(argv)
            assert code == 2 and len(err.strip().splitlines()) == 1
    assert not empty.exists()
    with contextlib.closing(sqlite3.connect(bad_files["foreign_sqlite"])) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names == {"photos"}


def test_report_on_a_store_without_sweeps_writes_nothing(tmp_path):
    folder = tmp_path / "sweep"
    SweepStore(folder / "sweep.sqlite").close()
    before = _snapshot(folder)
    code, _, err = _run(["report", str(folder)])
    assert code == 2 and "no sweep" in err
    assert _snapshot(folder) == before and not (folder / "report").exists()


# ------------------------------------------------------------------ malformed sweep configs
GOOD = """name: fuzz
model:
  factory: tiny_lm
grid:
  sizes: [{d_model: 8}]
  tokens: [1000]
"""

BAD_CONFIGS = {
    "a list": ("- name: x\n", "mapping"),
    "a scalar": ("just words\n", "mapping"),
    "tabs": ("name: x\n\tmodel: y\n", "YAML"),
    "unclosed": ("grid: {sizes: [\n", "YAML"),
    "duplicate key": (GOOD + "name: again\n", "twice"),
    "unknown section": (GOOD + "trainer: {}\n", "trainer"),
    "unknown key": (GOOD.replace("factory: tiny_lm", "factory: tiny_lm\n  size: 3"), "model.size"),
    "section not a mapping": (GOOD + "optimizer: 3\n", "optimizer"),
    "nan lr": (GOOD + "optimizer: {peak_lr: .nan}\n", "optimizer.peak_lr"),
    "inf lr": (GOOD + "optimizer: {peak_lr: .inf}\n", "optimizer.peak_lr"),
    "negative lr": (GOOD + "optimizer: {peak_lr: -1}\n", "optimizer.peak_lr"),
    "string lr": (GOOD + "optimizer: {peak_lr: fast}\n", "optimizer.peak_lr"),
    "bool int": (GOOD + "workers: true\n", "workers"),
    "zero workers": (GOOD + "workers: 0\n", "workers"),
    "float steps": (GOOD + "optimizer: {warmup_steps: 2.5}\n", "optimizer.warmup_steps"),
    "negative warmup": (GOOD + "optimizer: {warmup_steps: -3}\n", "optimizer.warmup_steps"),
    "fraction above one": (GOOD + "optimizer: {final_lr_fraction: 1.5}\n", "optimizer.final_lr_fraction"),
    "zero decay": (GOOD + "optimizer: {decay_fraction: 0}\n", "optimizer.decay_fraction"),
    "unknown schedule": (GOOD.replace("tokens: [1000]", "tokens: [1000]\n  schedules: [sawtooth]"), "grid.schedules"),
    "no sizes": (GOOD.replace("sizes: [{d_model: 8}]", "sizes: []"), "grid.sizes"),
    "size not a mapping": (GOOD.replace("sizes: [{d_model: 8}]", "sizes: [8]"), "grid.sizes"),
    "negative tokens": (GOOD.replace("tokens: [1000]", "tokens: [-5]"), "grid.tokens"),
    "unknown factory": (GOOD.replace("tiny_lm", "no_such_model"), "model.factory"),
    "unimportable factory": (GOOD.replace("tiny_lm", "no_such_module_xyz:build"), "model.factory"),
    "bad factory argument": (GOOD.replace("sizes: [{d_model: 8}]", "sizes: [{wings: 8}]"), "model"),
    "unknown policy": (GOOD + "stopping: {policy: oracle}\n", "stopping.policy"),
    "zero confirmations": (GOOD + "stopping: {confirmations: 0}\n", "stopping.confirmations"),
    "unknown law": (GOOD + "callback: {law: magic}\n", "callback.law"),
    "name with slash": (GOOD.replace("name: fuzz", "name: ../../escape"), "name"),
    "empty name": (GOOD.replace("name: fuzz", "name: ''"), "name"),
    "negative bootstrap": (GOOD + "frontier: {bootstrap: -1}\n", "frontier.bootstrap"),
    "zero target flops": (GOOD + "frontier: {target_flops: [0]}\n", "frontier.target_flops"),
    "store is a text file": (GOOD + "store: notes.txt\n", "notes.txt"),
    "store driver missing": (GOOD + "store: 'nosuchdb+nodriver://u@127.0.0.1:1/db'\n", "store"),
    "store unreachable": (GOOD + "store: 'postgresql://u@127.0.0.1:1/db'\n", "127.0.0.1"),
    "threshold above one": (GOOD + "stopping: {threshold: 2}\n", "stopping.threshold"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_malformed_sweep_configs_name_the_key_and_write_nothing(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a database\n")
    text, named = BAD_CONFIGS[case]
    config = tmp_path / "config.yaml"
    config.write_text(text)
    _assert_refused(["sweep", str(config), "--out", str(tmp_path / "out")], tmp_path, named)
    assert not (tmp_path / "runs").exists() and not (tmp_path.parent / "escape").exists()


def test_cli_processes_print_no_traceback(tmp_path):
    """As a user sees it: a subprocess, its stderr one line, exit 2."""
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(bytes(range(256)))
    for argv in (
        ["sweep", str(binary)],
        ["report", str(tmp_path), "--store", str(binary)],
        ["fit-compute", str(tmp_path), "--params-col", "N", "--tokens-col", "D", "--loss-col", "loss"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "scaling_callback", *argv], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_an_internal_error_prints_one_line_and_where_the_traceback_is(monkeypatch, tmp_path):
    import scaling_callback.cli.export as export

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(export, "run", broken)
    code, _, err = _run(["export", "anything", "--all"])
    assert code == 1 and len(err.strip().splitlines()) == 1 and "ZeroDivisionError" in err
    written = list((tmp_path / "scaling-callback-errors").glob("export-*.txt"))
    assert len(written) == 1 and "Traceback" in written[0].read_text()
