"""Feasibility of allocations: the invariant every mechanism must keep.

Feasible means ``0 <= a <= demands`` and ``sum_i a[..., i, m] <= budget[..., m]``.
"""
from __future__ import annotations

import numpy as np


def column_totals(allocation: np.ndarray) -> np.ndarray:
    """Per-resource totals over agents, ``(..., N, M) -> (..., M)`` (``einsum`` is several times
    faster than ``sum(axis=-2)`` for the small M of these problems)."""
    return np.einsum("...nm->...m", allocation)


def repair_feasibility(allocation: np.ndarray, demands: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """Remove solver round-off so that the allocation is exactly feasible.

    Clips to ``[0, demands]`` and scales down any resource column whose sum exceeds the
    budget. Meant for errors of order 1e-12, not for fixing a wrong solution.

    Shapes: ``allocation, demands (..., N, M)``, ``budget (..., M)``; returns ``(..., N, M)``.
    """
    a = np.clip(allocation, 0.0, demands)
    total = column_totals(a)
    over = total > budget
    if np.any(over):
        # Shrink by slightly more than the exact ratio so the recomputed sum cannot exceed it.
        scale = np.where(over, budget / np.where(over, total, 1.0) * (1.0 - 4 * np.finfo(float).eps), 1.0)
        a = a * scale[..., None, :]
        total = column_totals(a)
        if np.any(total > budget):
            # Subnormal amounts (below 2.2e-308) carry too few bits for that margin; their sums are
            # exact, so taking the excess off each such column's largest entry makes it fit.
            excess = np.where(total > budget, total - budget, 0.0)
            largest = np.arange(a.shape[-2])[:, None] == np.argmax(a, axis=-2)[..., None, :]  # (..., N, M)
            a = np.maximum(a - largest * excess[..., None, :], 0.0)
    return a


def is_feasible(allocation, demands, budget, atol: float = 0.0) -> np.ndarray:
    """Boolean ``(...)``: whether each allocation in the batch is feasible (within ``atol``)."""
    a = np.asarray(allocation)
    ok_bounds = np.all((a >= -atol) & (a <= np.asarray(demands) + atol), axis=(-2, -1))
    ok_budget = np.all(column_totals(a) <= np.asarray(budget) + atol, axis=-1)
    return ok_bounds & ok_budget
