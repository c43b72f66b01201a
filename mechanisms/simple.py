"""Simple reference rules: the uniform rule (equal split) and allocation proportional to demand.

Both allocate each resource separately from the reported demands alone; values, past
allocation and weights are validated (so bad input fails like in every other mechanism)
but do not change the allocation. Units: demands, budget and allocation share each
resource's unit.
"""
from __future__ import annotations

import numpy as np

from .feasibility import repair_feasibility
from .validation import check_instance


def equal_split(values, demands, budget, past=None, weights=None) -> np.ndarray:
    """The uniform rule per resource: equal split with unusable shares passed on.

    ``a_im = min(x_im, t_m)`` with the water level ``t_m`` chosen so that
    ``sum_i a_im = min(b_m, sum_i x_im)``: every agent gets an equal share, and what an
    agent cannot use (its demand is below the share) is split equally among the others.
    Modelling choice: demands cap the allocation (clipped-linear utility gives no value
    beyond demand), and no resource is withheld while demand for it is unmet.

    Shapes: ``values, demands, past (..., N, M)``, ``budget (..., M)``, ``weights (..., N)``
    (leading dimensions broadcast); returns ``(..., N, M)``.
    """
    inst = check_instance(values, demands, budget, past, weights)
    x, b = inst.demands, inst.budget
    # With demands sorted, d_(0) <= ... <= d_(N-1), and S_k the sum of the k smallest,
    # sum_i min(x_i, t) = min_k (S_k + (N - k) t), so the largest t with sum <= b is
    # max_k (b - S_k) / (N - k); it is >= max_i x_i when the demand fits in the budget.
    n = inst.n_agents
    cumulative = np.cumsum(np.sort(x, axis=-2), axis=-2)
    smaller = np.concatenate([np.zeros_like(cumulative[..., :1, :]), cumulative[..., :-1, :]], axis=-2)
    levels = (b[..., None, :] - smaller) / np.arange(n, 0, -1, dtype=np.float64)[:, None]
    level = levels.max(axis=-2)
    return repair_feasibility(np.minimum(x, level[..., None, :]), x, b)


def proportional_to_demand(values, demands, budget, past=None, weights=None) -> np.ndarray:
    """Allocation proportional to demand: ``a_im = x_im * min(1, b_m / sum_j x_jm)``.

    A resource with zero total demand allocates nothing. Modelling choice: when the
    demand fits every agent gets its demand; otherwise all demands are scaled by the same
    factor, so the whole budget is used.

    Shapes: ``values, demands, past (..., N, M)``, ``budget (..., M)``, ``weights (..., N)``
    (leading dimensions broadcast); returns ``(..., N, M)``.
    """
    inst = check_instance(values, demands, budget, past, weights)
    x, b = inst.demands, inst.budget
    total = x.sum(axis=-2)
    scale = np.divide(b, total, out=np.ones_like(total), where=total > b)
    return repair_feasibility(x * scale[..., None, :], x, b)
