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
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array, got {type(x).__name__}") from err
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {arr.shape}")
    if arr.size and not (arr.min() >= 0.0 and arr.max() < np.inf):  # also false for NaN
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite entries")
        raise ValueError(f"{name} must be non-negative, got minimum {arr.min()}")
    return arr


def check_instance(values, demands, budget, past=None, weights=None) -> Instance:
    """Validate and broadcast one batch of allocation problems.

    Leading batch dimensions broadcast against each other (a budget of shape ``(M,)``
    serves a whole batch of profiles). Raises ``ValueError`` naming the offending argument.
    """
    values = as_float_array(values, "values", 2)
    demands = as_float_array(demands, "demands", 2)
    budget = as_float_array(budget, "budget", 1)
    n, m = values.shape[-2:]
    if n < 1 or m < 1:
        raise ValueError(f"values must have N >= 1 agents and M >= 1 resources, got shape {values.shape}")
    if demands.shape[-2:] != (n, m):
        raise ValueError(f"demands must end in (N, M) = {(n, m)} like values, got shape {demands.shape}")
    if budget.shape[-1] != m:
        raise ValueError(f"budget must end in M = {m} like values, got shape {budget.shape}")
    past = np.zeros((n, m)) if past is None else as_float_array(past, "past", 2)
    if past.shape[-2:] != (n, m):
        raise ValueError(f"past must end in (N, M) = {(n, m)} like values, got shape {past.shape}")
    weights = np.ones(n) if weights is None else as_float_array(weights, "weights", 1)
    if weights.shape[-1] != n:
        raise ValueError(f"weights must end in N = {n} like values, got shape {weights.shape}")
    if np.any(weights <= 0):
        raise ValueError("weights must be strictly positive")
    largest_amount = max(demands.max(initial=0.0), budget.max(initial=0.0), past.max(initial=0.0))
    if values.max(initial=0.0) * largest_amount * n * m > MAX_UTILITY:
        raise ValueError(f"values times demands/budget/past exceed {MAX_UTILITY:g}: utilities would overflow; "
                         "rescale the units of values or resources")
    shapes = {
        "values": values.shape[:-2],
        "demands": demands.shape[:-2],
        "budget": budget.shape[:-1],
        "past": past.shape[:-2],
        "weights": weights.shape[:-1],
    }
    try:
        batch = shapes["values"] if len(set(shapes.values())) == 1 else np.broadcast_shapes(*shapes.values())
    except ValueError as err:
        detail = ", ".join(f"{k} {v}" for k, v in shapes.items())
        raise ValueError(f"batch dimensions do not broadcast: {detail}") from err
    return Instance(
        values=_broadcast(values, batch + (n, m)),
        demands=_broadcast(demands, batch + (n, m)),
        budget=_broadcast(budget, batch + (m,)),
        past=_broadcast(past, batch + (n, m)),
        weights=_broadcast(weights, batch + (n,)),
    )


def _broadcast(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return arr if arr.shape == shape else np.broadcast_to(arr, shape)
