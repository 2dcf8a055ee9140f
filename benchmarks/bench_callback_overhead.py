"""Wall-time overhead of ScalingLawCallback on a tiny CPU MLP (issue 4: ≤ 3 %, goal ≤ 2 %).

Each repeat trains the same tiny MLP for 2000 optimizer steps on CPU, without the callback and with
it: every step recorded and stored, a fit requested every 100 steps (defaults otherwise: 2 %
fitting budget), with a process and with a thread worker. Two more variants attribute the cost:
recording and storing only (``fit_every_n_steps=None``), and fits every 100 steps with no budget.
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
    """Wrap the callback's hooks on this instance to add up the wall time spent inside them."""
    spent = {"seconds": 0.0}
    for name in HOOKS:
        hook = getattr(callback, name)

        def timed(*args, _hook=hook, **kwargs):
            started = time.perf_counter()
            try:
                return _hook(*args, **kwargs)
            finally:
                spent["seconds"] += time.perf_counter() - started

        setattr(callback, name, timed)
    return spent


def train_once(steps: int, callback: ScalingLawCallback | None) -> tuple[float, float]:
    """Wall seconds and training-thread CPU seconds spent in ``trainer.fit``."""
    torch.manual_seed(0)
    trainer = pl.Trainer(
        max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[callback] if callback else [],
    )
    model, loader = TinyMLP(steps), data()
    started, cpu_started = time.perf_counter(), time.thread_time()
    trainer.fit(model, loader)
    return time.perf_counter() - started, time.thread_time() - cpu_started


VARIANTS = {  # name -> ScalingLawCallback arguments (None: no callback)
    "without": None,
    "record only": {"fit_every_n_steps": None},
    "process": {"fit_worker": "process"},
    "thread": {"fit_worker": "thread"},
    "process, no budget": {"fit_worker": "process", "max_fit_fraction": None, "wait_for_final_fit": False},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--torch-threads", type=int, default=1, help="intra-op threads (a tiny MLP gains nothing from more)")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    workdir = Path(tempfile.mkdtemp(prefix="bench_callback_"))
    names = list(VARIANTS)
    times: dict[str, list[float]] = {v: [] for v in names}
    cpu: dict[str, list[float]] = {v: [] for v in names}
    in_hooks: dict[str, list[float]] = {v: [] for v in names[1:]}
    online_fits: dict[str, list[int]] = {v: [] for v in names[1:]}
    waited: dict[str, int] = {v: 0 for v in names[1:]}
    fractions: dict[str, list[float]] = {v: [] for v in names[1:]}
    train_once(200, None)  # warm caches and imports outside the measurement
    train_once(200, ScalingLawCallback(store=workdir / "warm.sqlite", fit_every_n_steps=None))
    for repeat in range(args.repeats):
        order = names[repeat % len(names):] + names[: repeat % len(names)]
        for name in order:
            callback, hooks = None, None
            if VARIANTS[name] is not None:
                callback = ScalingLawCallback(store=workdir / "bench.sqlite", run_name=f"{name}-{repeat}", sweep="bench",
                                              **{"fit_every_n_steps": 100, **VARIANTS[name]})
                hooks = time_hooks(callback)
            wall, thread_cpu = train_once(args.steps, callback)
            times[name].append(wall)
            cpu[name].append(thread_cpu)
            if callback is not None:
                in_hooks[name].append(hooks["seconds"])
                waited[name] += int(callback._worker is not None and not callback._worker.busy and callback.latest_fit is not None
                                    and callback.latest_fit.get("final", False))
                fractions[name].append(callback._budget.fraction)
                callback.wait_for_fits(300)  # outside the timed region: let a background final fit finish
                fits = SweepStore(workdir / "bench.sqlite").fits(callback.run)
                online_fits[name].append(int((~fits.final).sum()) if len(fits) else 0)
        print(f"repeat {repeat + 1}: " + ", ".join(f"{v} {times[v][-1]:.2f}s" for v in names), flush=True)
    base, base_cpu = statistics.median(times["without"]), statistics.median(cpu["without"])
    print(f"\n{args.steps} steps, tiny MLP on CPU, torch threads={torch.get_num_threads()}, "
          f"median of {args.repeats} interleaved repeats; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"without callback: wall {base:.3f} s ({base / args.steps * 1e3:.3f} ms/step), training-thread CPU {base_cpu:.3f} s")
    for name in names[1:]:
        wall_ratio = statistics.median(t / b for t, b in zip(times[name], times["without"]))
        cpu_ratio = statistics.median(t / b for t, b in zip(cpu[name], cpu["without"]))
        hooks = statistics.median(in_hooks[name])
        print(f"{name:>20}: wall ratio {wall_ratio:.4f} (medians {statistics.median(times[name]) / base:.4f}), "
              f"training-thread CPU ratio {cpu_ratio:.4f}, inside the callback's hooks {hooks * 1e6 / args.steps:.1f} us/step "
              f"= {100 * hooks / statistics.median(times[name]):.2f} % of wall; online fits per run "
              f"{statistics.median(online_fits[name]):.0f}, final fit waited {waited[name]}/{args.repeats}, "
              f"fitting CPU/wall {100 * statistics.median(fractions[name]):.1f} %")


if __name__ == "__main__":
    main()
