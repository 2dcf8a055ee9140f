"""Checks shared by the fitters' inputs: a bad value is a one-line error naming it and its position."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scaling_callback.errors import InputError


def positive_pair(
    first: Sequence[float], second: Sequence[float], names: tuple[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """Two equally long 1-D float arrays of finite positive values (power laws are fitted in logs)."""
    arrays = []
    for name, values in zip(names, (first, second)):
        array = np.asarray(values, dtype=float).ravel()
        bad = np.flatnonzero(~np.isfinite(array) | (array <= 0))
        if bad.size:
            raise InputError(
                f"{name} must be finite and positive; point {bad[0]} has {name} = {float(array[bad[0]])!r}"
            )
        arrays.append(array)
    if arrays[0].size != arrays[1].size:
        raise InputError(f"{names[0]} and {names[1]} differ in length ({arrays[0].size} vs {arrays[1].size})")
    return arrays[0], arrays[1]
