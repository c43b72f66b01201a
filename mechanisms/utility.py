"""Clipped-linear utilities: ``u_i = sum_m v_im * min(a_im, x_im)`` (value per unit times used units)."""
from __future__ import annotations

import numpy as np


def utility(values, demands, allocation) -> np.ndarray:
    """One round's true utility per agent: ``(..., N, M)`` inputs (broadcast) to ``(..., N)``.

    Units: values are utility per unit of each resource; demands and allocation are in
    resource units. Allocation beyond the demand is worth nothing.
    """
    used = np.minimum(np.asarray(allocation, dtype=np.float64), np.asarray(demands, dtype=np.float64))
    # einsum (broadcasting like *) is several times faster than sum(axis=-1) for small M
    return np.einsum("...m,...m->...", np.asarray(values, dtype=np.float64), used)


def total_utilities(values, demands, allocations) -> np.ndarray:
    """Utility summed over the horizon, ``U_i = sum_t u_i(a^t, v, x^t)``: returns ``(..., N)``.

    Shapes: ``values (..., N, M)`` (fixed over the horizon), ``demands, allocations
    (..., T, N, M)``.
    """
    values = np.asarray(values, dtype=np.float64)[..., None, :, :]
    return utility(values, demands, allocations).sum(axis=-2)
