"""Wall-time overhead of ScalingLawCallback on a tiny CPU MLP (target ≤ 3 %, goal ≤ 2 %).

Each repeat trains the same tiny MLP for 2000 optimizer steps on CPU, without the callback and with
it: every step recorded and stored, a fit requested every 100 steps (defaults otherwise: 2 %
fitting budget), with a process and with a thread worker. Two more variants attribute the cost:
recording and storing only (``fit_every_n_steps=None``), and fits every 100 steps with no budget
(process and thread worker: which costs a CPU-bound loop less), plus an empty callback (what
Lightning charges for any callback). A second measurement pairs 100-step windows inside runs.
The variants run interleaved, in a rotating order, in one process, so machine load hits them
alike; ratios to the run without the callback are printed with the fits that ran. Only
``trainer.fit`` is timed; a final fit that the budget does not let training wait for completes
in the background afterwards.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_callback_overhead.py [--steps 2000] [--repeats 5]

Torch runs with one intra-op thread by default (``--torch-threads``): on a shared 2-core machine two
OpenMP threads made each tiny step 4× slower through oversubscription, with no gain.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning.pytorch as pl

from scaling_callback import ScalingLawCallback, SweepStore
from scaling_callback.store.writer import BatchedWriter

WARMUP_FRACTION = 0.05


class TinyMLP(pl.LightningModule):
    """32 → 64 → 1 regression MLP; SGD with linear warmup then cosine decay to 10 %."""

    def __init__(self, total_steps: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 1))
        self.total_steps = total_steps

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.net(x).squeeze(-1), y)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.05)
        warmup = max(int(WARMUP_FRACTION * self.total_steps), 1)

        def factor(i: int) -> float:
            if i < warmup:
                return (i + 1) / warmup
            return 0.1 + 0.45 * (1 + math.cos(math.pi * (i - warmup) / max(self.total_steps - warmup, 1)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def data(n: int = 8192) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 32, generator=generator)
    y = x[:, :4].sum(1) + 0.1 * torch.randn(n, generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=generator)


HOOKS = ("on_train_start", "on_train_batch_start", "on_before_optimizer_step", "on_train_batch_end", "on_train_end",
         "state_dict", "teardown")


def time_hooks(callback: ScalingLawCallback) -> dict[str, float]:
    """Wrap the callback's hooks on this instance to add up the CPU time the training thread spends inside them.

    ``calls`` counts hook calls, so that the wrapper's own cost (:func:`wrapper_cost`) can be taken off.
    """
    spent = {"seconds": 0.0, "calls": 0}
    for name in HOOKS:
        hook = getattr(callback, name)

        def timed(*args, _hook=hook, **kwargs):
            started = time.thread_time()
            try:
                return _hook(*args, **kwargs)
            finally:
                spent["seconds"] += time.thread_time() - started
                spent["calls"] += 1

        setattr(callback, name, timed)
    return spent


WRITER_CPU = {"seconds": 0.0}


def count_writer_cpu() -> None:
    """Add up the CPU time of every store-writer thread (opening the store and each write)."""
    run, open_ = BatchedWriter._run, BatchedWriter._open

    def timed(method):
        def wrapper(self, *args):
            started = time.thread_time()
            try:
                return method(self, *args)
            finally:
                WRITER_CPU["seconds"] += time.thread_time() - started
        return wrapper

    BatchedWriter._run, BatchedWriter._open = timed(run), timed(open_)


def wrapper_cost(n: int = 200_000) -> float:
    """CPU seconds :func:`time_hooks`' wrapper adds per call (two ``thread_time`` calls and one extra Python call)."""
    spent = {"seconds": 0.0, "calls": 0}

    def nothing(*args, **kwargs):
        return None

    def timed(*args, **kwargs):
        started = time.thread_time()
        try:
            return nothing(*args, **kwargs)
        finally:
            spent["seconds"] += time.thread_time() - started
            spent["calls"] += 1

    began = time.thread_time()
    for _ in range(n):
        timed(1, 2)
    return (time.thread_time() - began) / n


def train_once(steps: int, callback: ScalingLawCallback | None) -> tuple[float, float, float]:
    """Wall seconds, training-thread CPU seconds and process CPU seconds (all its threads) spent in ``trainer.fit``."""
    torch.manual_seed(0)
    trainer = pl.Trainer(
        max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[callback] if callback else [],
    )
    model, loader = TinyMLP(steps), data()
    started, thread_started, process_started = time.perf_counter(), time.thread_time(), time.process_time()
    trainer.fit(model, loader)
    return time.perf_counter() - started, time.thread_time() - thread_started, time.process_time() - process_started


VARIANTS = {  # name -> ScalingLawCallback arguments (None: no callback; "empty": a Callback that overrides nothing)
    "without": None,
    "empty callback": "empty",
    "record only": {"fit_every_n_steps": None},
    "process": {"fit_worker": "process"},
    "thread": {"fit_worker": "thread"},
    "process, no budget": {"fit_worker": "process", "max_fit_fraction": None, "wait_for_final_fit": False},
    "thread, no budget": {"fit_worker": "thread", "max_fit_fraction": None, "wait_for_final_fit": False},
}


class Toggled(pl.Callback):
    """Forwards every hook to ``inner``, the per-batch ones only in every other window of ``window`` steps; times windows.

    Adjacent windows with and without the callback's per-step work form pairs that machine load hits
    alike. Windows of 100 steps each hold one flush and one due fit, as in a normal run.
    """

    def __init__(self, inner: ScalingLawCallback, window: int = 100) -> None:
        self.inner, self.window = inner, window
        self.windows: list[tuple[bool, float]] = []  # (callback on, seconds) per finished window
        self._started: float | None = None
        self._on = True
        self.one_time = {"train start": 0.0, "first batch": 0.0, "train end": 0.0}

    def setup(self, trainer, pl_module, stage):
        self.inner.setup(trainer, pl_module, stage)

    def on_train_start(self, trainer, pl_module):
        started = time.thread_time()
        self.inner.on_train_start(trainer, pl_module)
        self.one_time["train start"] = time.thread_time() - started

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        step, now = trainer.global_step, time.perf_counter()
        if step % self.window == 0:
            if self._started is not None:
                self.windows.append((self._on, now - self._started))
            self._started, self._on = now, (step // self.window) % 2 == 0
        if step == 0:  # the first batch carries the one-time FLOP measurement: counted apart
            started = time.thread_time()
            self.inner.on_train_batch_start(trainer, pl_module, batch, batch_idx)
            self.one_time["first batch"] = time.thread_time() - started
        elif self._on:
            self.inner.on_train_batch_start(trainer, pl_module, batch, batch_idx)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if self._on:
            self.inner.on_before_optimizer_step(trainer, pl_module, optimizer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self._on:
            self.inner.on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_end(self, trainer, pl_module):
        started = time.thread_time()
        self.inner.on_train_end(trainer, pl_module)
        self.one_time["train end"] = time.thread_time() - started

    def teardown(self, trainer, pl_module, stage):
        started = time.thread_time()
        self.inner.teardown(trainer, pl_module, stage)
        self.one_time["train end"] += time.thread_time() - started

    def pair_ratios(self) -> list[float]:
        """Seconds of each on-window over the following off-window, skipping the first pair (warm-up)."""
        pairs = list(zip(self.windows[0::2], self.windows[1::2]))[1:]
        return [on / off for (is_on, on), (_, off) in pairs if is_on]


def paired(workdir: Path, steps: int, runs: int) -> None:
    """Per-step overhead from paired windows within runs, plus one-time costs spread over the run."""
    ratios, one_time, run_seconds = [], [], []
    for run in range(runs):
        inner = ScalingLawCallback(store=workdir / "paired.sqlite", run_name=f"paired-{run}", sweep="bench", fit_every_n_steps=100)
        toggled = Toggled(inner)
        wall, _, _ = train_once(steps, toggled)
        inner.wait_for_fits(300)
        ratios += toggled.pair_ratios()
        one_time.append(sum(toggled.one_time.values()))
        run_seconds.append(wall)
        print(f"paired run {run + 1}: " + ", ".join(f"{r:.3f}" for r in toggled.pair_ratios())
              + "; one-time " + ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in toggled.one_time.items()), flush=True)
    ratios.sort()
    quartiles = statistics.quantiles(ratios, n=4)
    per_step = statistics.median(ratios) - 1
    spread = statistics.median(one_time) / statistics.median(run_seconds)
    print(f"\npaired windows ({len(ratios)} pairs of 100-step windows, default callback, process worker): per-step overhead "
          f"{100 * per_step:+.2f} % (quartiles {100 * (quartiles[0] - 1):+.2f} to {100 * (quartiles[2] - 1):+.2f} %); "
          f"one-time CPU {1e3 * statistics.median(one_time):.0f} ms = {100 * spread:.2f} % of a {steps}-step run; "
          f"total {100 * (per_step + spread):+.2f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--torch-threads", type=int, default=1, help="intra-op threads (a tiny MLP gains nothing from more)")
    parser.add_argument("--paired-runs", type=int, default=3, help="runs of the paired-window measurement (0: skip)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME",
                        help=f"variants to compare with 'without' (default: all of {', '.join(VARIANTS)})")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    workdir = Path(tempfile.mkdtemp(prefix="bench_callback_"))
    names = ["without"] + [v for v in args.variants if v != "without"]
    times: dict[str, list[float]] = {v: [] for v in names}
    cpu: dict[str, list[float]] = {v: [] for v in names}
    process_cpu: dict[str, list[float]] = {v: [] for v in names}
    in_hooks: dict[str, list[float]] = {v: [] for v in names[1:]}
    in_writer: dict[str, list[float]] = {v: [] for v in names[1:]}
    count_writer_cpu()
    online_fits: dict[str, list[int]] = {v: [] for v in names[1:]}
    waited: dict[str, int] = {v: 0 for v in names[1:]}
    fractions: dict[str, list[float]] = {v: [] for v in names[1:]}
    overhead = wrapper_cost()
    train_once(200, None)  # warm caches and imports outside the measurement
    train_once(200, ScalingLawCallback(store=workdir / "warm.sqlite", fit_every_n_steps=None))
    for repeat in range(args.repeats):
        order = names[repeat % len(names):] + names[: repeat % len(names)]
        for name in order:
            callback, hooks = None, None
            if VARIANTS[name] == "empty":
                callback = pl.Callback()
            elif VARIANTS[name] is not None:
                callback = ScalingLawCallback(store=workdir / "bench.sqlite", run_name=f"{name}-{repeat}", sweep="bench",
                                              **{"fit_every_n_steps": 100, **VARIANTS[name]})
                hooks = time_hooks(callback)
            WRITER_CPU["seconds"] = 0.0
            wall, thread_cpu, all_threads_cpu = train_once(args.steps, callback)
            times[name].append(wall)
            cpu[name].append(thread_cpu)
            process_cpu[name].append(all_threads_cpu)
            if isinstance(callback, ScalingLawCallback):
                in_hooks[name].append(max(hooks["seconds"] - hooks["calls"] * overhead, 0.0))
                in_writer[name].append(WRITER_CPU["seconds"])
                waited[name] += int(callback.latest_fit is not None and bool(callback.latest_fit.get("final")))
                fractions[name].append(callback._fits.budget.fraction if callback._fits is not None else 0.0)
                callback.wait_for_fits(300)  # outside the timed region: let a background final fit finish
                fits = SweepStore(workdir / "bench.sqlite").fits(callback.run)
                online_fits[name].append(int((~fits.final).sum()) if len(fits) else 0)
        print(f"repeat {repeat + 1}: " + ", ".join(f"{v} {times[v][-1]:.2f}s" for v in names), flush=True)
    base, base_cpu = statistics.median(times["without"]), statistics.median(cpu["without"])
    print(f"\n{args.steps} steps, tiny MLP on CPU, torch threads={torch.get_num_threads()}, "
          f"median of {args.repeats} interleaved repeats; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"without callback: wall {base:.3f} s ({base / args.steps * 1e3:.3f} ms/step), training-thread CPU {base_cpu:.3f} s")
    print("wall / process CPU: medians of per-repeat ratios to the run without the callback (min-max in brackets);\n"
          f"callback CPU: training-thread CPU inside the callback's hooks (less the timer's own {overhead * 1e6:.2f} us per "
          "call) plus the store-writer thread's CPU, as a fraction of the training thread's CPU without the callback")
    for name in names[1:]:
        if not in_hooks[name]:  # the empty callback: Lightning's own cost of one more callback
            print(f"{name:>20}: wall {statistics.median(t / b for t, b in zip(times[name], times['without'])):.4f}, "
                  f"training-thread CPU {statistics.median(t / b for t, b in zip(cpu[name], cpu['without'])):.4f}")
            continue
        wall_ratio = statistics.median(t / b for t, b in zip(times[name], times["without"]))
        process_ratio = statistics.median(t / b for t, b in zip(process_cpu[name], process_cpu["without"]))
        hooks = statistics.median(h / base_cpu for h in in_hooks[name])
        writer = statistics.median(w / base_cpu for w in in_writer[name])
        per_step = statistics.median(in_hooks[name]) * 1e6 / args.steps
        spread = [t / b for t, b in zip(times[name], times["without"])]
        print(f"{name:>20}: wall {wall_ratio:.4f} [{min(spread):.2f}-{max(spread):.2f}], process CPU {process_ratio:.4f}, "
              f"callback CPU {100 * (hooks + writer):.2f} % (hooks {100 * hooks:.2f} % = {per_step:.1f} us/step, "
              f"writer {100 * writer:.2f} %); online fits per run {statistics.median(online_fits[name]):.0f}, "
              f"final fit waited {waited[name]}/{args.repeats}, fitting CPU/wall {100 * statistics.median(fractions[name]):.1f} %")
    if args.paired_runs:
        paired(workdir, args.steps, args.paired_runs)


if __name__ == "__main__":
    main()
