"""Broken neural scaling law (BNSL), pure numpy.

Caballero et al. 2023, "Broken Neural Scaling Laws" (ICLR 2023), eq. (1):

    y = a + b · x^(−c0) · Π_{i=1..n} (1 + (x / d_i)^(1/f_i))^(−c_i · f_i)

a is the limit, b·x^(−c0) the first power-law segment; at each break d_i the slope changes by
−c_i (in log–log terms, after the constant a), with sharpness f_i (small f = sharp break). Negative
c_i make non-monotone shapes (e.g. double descent) possible.
"""

from __future__ import annotations

import numpy as np


def bnsl(x: np.ndarray, a: float, b: float, c0: float, c: np.ndarray, d: np.ndarray, f: np.ndarray) -> np.ndarray:
    """y(x) of Caballero et al. 2023, eq. (1), with n = len(c) = len(d) = len(f) breaks."""
    return a + bnsl_power_term(np.asarray(x, dtype=float), b, c0, c, d, f)[0]


def bnsl_power_term(
    x: np.ndarray, b: float, c0: float, c: np.ndarray, d: np.ndarray, f: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """T = b·x^(−c0)·Π(1 + (x/d_i)^(1/f_i))^(−c_i f_i) and ∂log T / ∂(log b, c0, c_i…, log d_i…, log f_i…).

    With z_i = (log x − log d_i)/f_i, s_i = sigmoid(z_i) and softplus(z) = log(1 + e^z):
    ∂/∂c_i = −f_i·softplus(z_i), ∂/∂log d_i = c_i·s_i, ∂/∂log f_i = c_i·(s_i·z_i·f_i − f_i·softplus(z_i)).
    """
    log_x = np.log(np.asarray(x, dtype=float))
    c, d, f = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (c, d, f))
    z = (log_x[:, None] - np.log(d)[None, :]) / f[None, :]
    softplus = np.logaddexp(0.0, z)
    sigmoid = np.exp(z - softplus)
    log_t = np.log(b) - c0 * log_x - (c * f * softplus).sum(axis=1)
    columns = [np.ones_like(log_x), -log_x]
    columns += list((-f * softplus).T)
    columns += list((c * sigmoid).T)
    columns += list((c * (sigmoid * z * f - f * softplus)).T)
    return np.exp(log_t), np.column_stack(columns)
