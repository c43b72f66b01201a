"""Partial allocation (Cole, Gkatzelis and Goel, 2013): PF scaled down to make truth-telling optimal.

Each agent receives its PF bundle scaled by ``r_i = (prod_{j != i} u_j(a*) / prod_{j != i}
u_j(a^{-i}))^{1 / w_i}``, the factor by which its presence lowers the others' weighted
Nash welfare (``a*`` is PF with everyone, ``a^{-i}`` PF without agent i). All ``N + 1`` PF
problems are solved in one batched call. Utilities here are the PF objective's: with a bias
``past`` they include the past allocation, ``u_j = v_j . (a_j + past_j)``.

Agents with zero utility in both products are skipped (they would contribute 0/0); ``r_i``
is clipped to ``[0, 1]`` against solver round-off (mathematically it lies there because
``a*`` restricted to the others is feasible for the problem without ``i``).
"""
from __future__ import annotations

import numpy as np

from .pf import bias_utility, solve_proportional_fairness
from .validation import check_instance


def partial_allocation(values, demands, budget, past=None, weights=None) -> np.ndarray:
    """Partial-allocation mechanism. Shapes as PF: ``(..., N, M)`` reports, ``budget (..., M)``.

    Returns the allocation ``(..., N, M)``; see :func:`partial_allocation_factors` for ``r``.
    """
    inst = check_instance(values, demands, budget, past, weights)
    allocation, factors = _pf_and_factors(inst.values, inst.demands, inst.budget, inst.past, inst.weights)
    return allocation * factors[..., None]


def partial_allocation_factors(values, demands, budget, past=None, weights=None) -> np.ndarray:
    """The scaling factors ``r (..., N)`` in ``[0, 1]`` applied to each agent's PF bundle."""
    inst = check_instance(values, demands, budget, past, weights)
    return _pf_and_factors(inst.values, inst.demands, inst.budget, inst.past, inst.weights)[1]


def _pf_and_factors(v, x, b, past, w):
    n = v.shape[-2]
    # Stack the full problem and the N problems without one agent along a new leading axis.
    drop = np.concatenate([np.ones((1, n)), 1.0 - np.eye(n)])  # (N+1, N): 0 marks the removed agent
    mask = drop.reshape((n + 1,) + (1,) * (v.ndim - 2) + (n, 1))
    stacked = solve_proportional_fairness(v, x * mask, b, past * mask, w)
    alloc = stacked.allocation
    utility = bias_utility(v, past + alloc)  # (N+1, ..., N)
    with_all, without = utility[0], utility[1:]
    both_positive = (with_all > 0) & (without > 0)  # (N, ..., N): [i, ..., j]
    log_ratio = np.where(both_positive, np.log(np.where(both_positive, with_all, 1.0))
                         - np.log(np.where(both_positive, without, 1.0)), 0.0)
    lost = (with_all <= 0) & (without > 0)  # a positive utility driven to 0 by agent i
    others = 1.0 - np.eye(n).reshape((n,) + (1,) * (v.ndim - 2) + (n,))
    log_r = (others * w[None] * log_ratio).sum(-1)  # (N, ...)
    any_lost = np.moveaxis((others * lost).sum(-1) > 0, 0, -1)
    factors = np.where(any_lost, 0.0, np.exp(np.moveaxis(log_r, 0, -1) / w))
    return alloc[0], np.clip(factors, 0.0, 1.0)
