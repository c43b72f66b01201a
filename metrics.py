"""Welfare metrics of allocations: Nash social welfare, its log, utilitarian welfare, efficiency.

Utilities are the agents' true clipped-linear utilities (:mod:`mechzoo.mechanisms.utility`).
Exploitability estimators live beside these once the measurement tools exist.
"""
from __future__ import annotations

import numpy as np


def nash_social_welfare(utilities) -> np.ndarray:
    """Product of the agents' utilities: ``(..., N) -> (...)`` (0 if any agent gets nothing)."""
    return np.prod(np.asarray(utilities, dtype=np.float64), axis=-1)


def log_nash_social_welfare(utilities) -> np.ndarray:
    """Sum of log utilities ``(..., N) -> (...)``; ``-inf`` where an agent gets nothing."""
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(utilities, dtype=np.float64)).sum(axis=-1)


def utilitarian_welfare(utilities) -> np.ndarray:
    """Sum of utilities ``(..., N) -> (...)``."""
    return np.asarray(utilities, dtype=np.float64).sum(axis=-1)


def efficiency(total_allocation, budget) -> np.ndarray:
    """Share of the budget handed out, averaged over resources (the SAMA paper's definition).

    ``total_allocation (..., N, M)`` is the allocation summed over rounds and ``budget
    (..., M)`` the initial budget; returns ``(...)`` in [0, 1]. Resources with zero budget
    are left out of the average.
    """
    used = np.asarray(total_allocation, dtype=np.float64).sum(axis=-2)
    budget = np.asarray(budget, dtype=np.float64)
    has_budget = budget > 0
    share = np.where(has_budget, used / np.where(has_budget, budget, 1.0), 0.0)
    return share.sum(axis=-1) / np.maximum(has_budget.sum(axis=-1), 1)
