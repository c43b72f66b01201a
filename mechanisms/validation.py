"""Checks and broadcasting of mechanism inputs, shared by every allocation rule.

Every public mechanism calls :func:`check_instance` first, so bad input fails with a
``ValueError`` that names the argument instead of crashing inside a solver.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_UTILITY = 1e300  # larger utilities overflow float64 arithmetic inside the solvers


@dataclass(frozen=True)
class Instance:
    """A validated batch of allocation problems, all arrays float64 and broadcast.

    Shapes: ``values, demands, past (*batch, N, M)``, ``budget (*batch, M)``,
    ``weights (*batch, N)``.
    """

    values: np.ndarray
    demands: np.ndarray
    budget: np.ndarray
    past: np.ndarray
    weights: np.ndarray

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.values.shape[:-2]

    @property
    def n_agents(self) -> int:
        return self.values.shape[-2]

    @property
    def n_resources(self) -> int:
        return self.values.shape[-1]


def as_float_array(x, name: str, min_ndim: int) -> np.ndarray:
    """Convert ``x`` to a float64 array, rejecting NaN, infinities, negatives and low rank."""
    return _checked_array(x, name, min_ndim)[0]


def _checked_array(x, name: str, min_ndim: int) -> tuple[np.ndarray, float]:
    """:func:`as_float_array` that also returns the array's largest entry (0 when empty)."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array, got {type(x).__name__}") from err
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {arr.shape}")
    if not arr.size:
        return arr, 0.0
    largest = arr.max()
    if not (arr.min() >= 0.0 and largest < np.inf):  # also false for NaN
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite entries")
        raise ValueError(f"{name} must be non-negative, got minimum {arr.min()}")
    return arr, float(largest)


def check_instance(values, demands, budget, past=None, weights=None) -> Instance:
    """Validate and broadcast one batch of allocation problems.

    Leading batch dimensions broadcast against each other (a budget of shape ``(M,)``
    serves a whole batch of profiles). Raises ``ValueError`` naming the offending argument.
    """
    values, largest_value = _checked_array(values, "values", 2)
    demands, largest_demand = _checked_array(demands, "demands", 2)
    budget, largest_budget = _checked_array(budget, "budget", 1)
    n, m = values.shape[-2:]
    if n < 1 or m < 1:
        raise ValueError(f"values must have N >= 1 agents and M >= 1 resources, got shape {values.shape}")
    if demands.shape[-2:] != (n, m):
        raise ValueError(f"demands must end in (N, M) = {(n, m)} like values, got shape {demands.shape}")
    if budget.shape[-1] != m:
        raise ValueError(f"budget must end in M = {m} like values, got shape {budget.shape}")
    shapes = {"values": values.shape[:-2], "demands": demands.shape[:-2], "budget": budget.shape[:-1]}
    largest_past = 0.0
    if past is not None:
        past, largest_past = _checked_array(past, "past", 2)
        if past.shape[-2:] != (n, m):
            raise ValueError(f"past must end in (N, M) = {(n, m)} like values, got shape {past.shape}")
        shapes["past"] = past.shape[:-2]
    if weights is not None:
        weights = as_float_array(weights, "weights", 1)
        if weights.shape[-1] != n:
            raise ValueError(f"weights must end in N = {n} like values, got shape {weights.shape}")
        if np.any(weights <= 0):
            raise ValueError("weights must be strictly positive")
        shapes["weights"] = weights.shape[:-1]
    if largest_value * max(largest_demand, largest_budget, largest_past) * n * m > MAX_UTILITY:
        raise ValueError(f"values times demands/budget/past exceed {MAX_UTILITY:g}: utilities would overflow; "
                         "rescale the units of values or resources")
    batch_shapes = list(shapes.values())
    if batch_shapes.count(batch_shapes[0]) == len(batch_shapes):
        batch = batch_shapes[0]
    else:
        try:
            batch = np.broadcast_shapes(*batch_shapes)
        except ValueError as err:
            detail = ", ".join(f"{k} {v}" for k, v in shapes.items())
            raise ValueError(f"batch dimensions do not broadcast: {detail}") from err
    return Instance(
        values=_broadcast(values, batch + (n, m)),
        demands=_broadcast(demands, batch + (n, m)),
        budget=_broadcast(budget, batch + (m,)),
        past=np.zeros(batch + (n, m)) if past is None else _broadcast(past, batch + (n, m)),
        weights=np.ones(batch + (n,)) if weights is None else _broadcast(weights, batch + (n,)),
    )


def _broadcast(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return arr if arr.shape == shape else np.broadcast_to(arr, shape)
