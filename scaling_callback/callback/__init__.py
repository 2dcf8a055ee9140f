"""The Lightning callback and the framework-free pieces it glues together.

Names are imported on first use: the background fit worker runs as
``python -m scaling_callback.callback.fit_worker`` and must not pay for importing torch and
Lightning through this package.
"""

from __future__ import annotations

__all__ = ["ScalingLawCallback", "StoppingPolicy"]

_LAZY = {
    "ScalingLawCallback": "scaling_callback.callback.scaling_law_callback",
    "StoppingPolicy": "scaling_callback.stopping.policy",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'scaling_callback.callback' has no attribute {name!r}")
