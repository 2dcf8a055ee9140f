"""A sweep factory whose chosen run kills its own process (SIGKILL) once, mid-run (tests/test_integrations_ray.py).

``build(..., marker=PATH, kill_run_seed=0, kill_d_model=16, kill_at=25)`` is the tiny LM factory, except that
the run of that seed and width SIGKILLs itself at step ``kill_at`` unless ``marker`` exists (it creates
it first), as an external ``kill -9`` of a trial's process would.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from scaling_callback.sweep.runs import RunSetup, tiny_lm_factory


def build(
    size: dict,
    tokens: float,
    schedule: dict,
    seed: int,
    marker: str = "",
    kill_d_model: int = 16,
    kill_at: int = 25,
    **args,
) -> RunSetup:
    setup = tiny_lm_factory(size=size, tokens=tokens, schedule=schedule, seed=seed, **args)
    if marker and size.get("d_model") == kill_d_model and not Path(marker).exists():
        module = setup.module

        def kill_mid_run(outputs, batch, batch_idx) -> None:
            if module.trainer.global_step >= kill_at:
                Path(marker).write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)

        module.on_train_batch_end = kill_mid_run
    return setup
