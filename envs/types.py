"""Type distributions: how the agents' private values and demands are drawn for an episode.

A type distribution is any object with this protocol (:class:`TypeDistribution`):

* ``value_low``, ``value_high`` (floats, ``0 <= value_low <= value_high``): the support of the
  values ``v_{i,m}``;
* ``demand_high`` (float ``> 0``): demands lie in ``[0, demand_high]``;
* ``sample(rng, n_agents, n_resources, horizon) -> (values, demands)`` with ``rng`` a
  ``numpy.random.Generator``, ``values`` of shape ``(N, M)`` and ``demands`` of shape
  ``(T, N, M)``, float64 inside the support.

The games draw the whole episode's types at ``reset`` (one call per instance, with that
instance's generator), so a truthful shadow run and a mechanism ``rollout`` can replay exactly
the same draws. Values are fixed over the horizon (reported once); demands are per round.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TypeDistribution(Protocol):
    """Protocol of a type distribution (see the module docstring)."""

    value_low: float
    value_high: float
    demand_high: float

    def sample(self, rng: np.random.Generator, n_agents: int, n_resources: int,
               horizon: int) -> tuple[np.ndarray, np.ndarray]:
        ...


@dataclass(frozen=True)
class UniformBernoulliTypes:
    """The SAMA paper's data (§7): ``v ~ U(value_low, value_high)``, ``x = U(demand_low, demand_high) * Bernoulli(p)``.

    Independent over agents, resources and rounds. Defaults: ``v ~ U(0.1, 1)``,
    ``x = U(0.1, 1) * Bernoulli(0.5)`` (so half of all demands are exactly 0).
    """

    value_low: float = 0.1
    value_high: float = 1.0
    demand_low: float = 0.1
    demand_high: float = 1.0
    demand_probability: float = 0.5

    def __post_init__(self):
        numbers = (self.value_low, self.value_high, self.demand_low, self.demand_high, self.demand_probability)
        if not all(np.isfinite(x) for x in numbers):
            raise ValueError(f"UniformBernoulliTypes parameters must be finite, got {numbers}")
        if not 0.0 <= self.value_low <= self.value_high:
            raise ValueError("UniformBernoulliTypes needs 0 <= value_low <= value_high, "
                             f"got {self.value_low}, {self.value_high}")
        if not 0.0 <= self.demand_low <= self.demand_high or self.demand_high <= 0.0:
            raise ValueError("UniformBernoulliTypes needs 0 <= demand_low <= demand_high and demand_high > 0, "
                             f"got {self.demand_low}, {self.demand_high}")
        if not 0.0 <= self.demand_probability <= 1.0:
            raise ValueError(f"demand_probability must lie in [0, 1], got {self.demand_probability}")

    def sample(self, rng: np.random.Generator, n_agents: int, n_resources: int,
               horizon: int) -> tuple[np.ndarray, np.ndarray]:
        values = rng.uniform(self.value_low, self.value_high, (n_agents, n_resources))
        shape = (horizon, n_agents, n_resources)
        demands = rng.uniform(self.demand_low, self.demand_high, shape) * (rng.random(shape) < self.demand_probability)
        return values, demands
