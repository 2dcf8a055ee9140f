import numpy as np
import pytest

from scaling_callback.errors import InputError
from scaling_callback.fitting.inputs import positive_pair


def test_returns_flat_float_arrays():
    first, second = positive_pair([[1, 2]], (3.0, 4.0), ("n", "loss"))
    assert first.dtype == float and first.tolist() == [1.0, 2.0] and second.tolist() == [3.0, 4.0]


@pytest.mark.parametrize(
    "first, second, message",
    [
        ([1.0, -2.0], [1.0, 1.0], r"n must be finite and positive; point 1 has n = -2.0"),
        ([1.0, 2.0], [1.0, np.nan], r"loss must be finite and positive; point 1 has loss = nan"),
        ([1.0, 2.0], [1.0], r"n and loss differ in length \(2 vs 1\)"),
    ],
)
def test_names_the_bad_value(first, second, message):
    with pytest.raises(InputError, match=message):
        positive_pair(first, second, ("n", "loss"))
