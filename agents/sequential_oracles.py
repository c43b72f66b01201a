"""Best responses in the sequential games: online and full exploitability (SAMA paper, §2).

* **Full**: agent i misreports its values and its whole demand sequence; the gain is in its
  total true utility over the horizon, others truthful.
* **Online**: agent i deviates in one round t only, from the history of the truthful run;
  the gain is in that round's true utility; the maximum over rounds is reported.

The search space is scripted misreports (:class:`ScalingMisreports`): true values and
demands scaled by constant per-resource factors, a grid around the truth like the paper's
"local grid search around the true parameters". Candidates are rolled out in batch through
the sequential mechanism's state machine, never one env step at a time.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..mechanisms.sequential import SequentialMechanism, SequentialState
from ..mechanisms.utility import utility
from .oracles import ReportSpace, candidate_chunks

DEFAULT_VALUE_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
DEFAULT_DEMAND_FACTORS = (0.5, 1.0, 1.5, 2.0)


@dataclass(frozen=True)
class ScalingMisreports:
    """Misreports ``v' = clip(v * f_v)`` and ``x'^t = clip(x^t * f_x)`` with per-resource factors.

    Each candidate picks one value factor per resource (``len(value_factors) ** M``
    combinations) and one demand factor for all resources and rounds; reports are clipped to
    ``space``. Factor 1 everywhere is the truth, so gains are never negative.
    """

    value_factors: tuple[float, ...] = DEFAULT_VALUE_FACTORS
    demand_factors: tuple[float, ...] = DEFAULT_DEMAND_FACTORS
    space: ReportSpace = ReportSpace()

    def __post_init__(self):
        for name in ("value_factors", "demand_factors"):
            factors = np.asarray(getattr(self, name), dtype=float)
            if factors.ndim != 1 or factors.size == 0 or np.any(factors < 0) or 1.0 not in factors:
                raise ValueError(f"{name} must be a non-empty list of non-negative factors including 1.0")

    def factors(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """``(value_factors (C, M), demand_factors (C, M))`` over all candidates."""
        vf = list(itertools.product(self.value_factors, repeat=m)) if self.space.searches_values else [(1.0,) * m]
        xf = [(f,) * m for f in self.demand_factors] if self.space.searches_demands else [(1.0,) * m]
        pairs = list(itertools.product(vf, xf))
        return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])

    @property
    def label(self) -> str:
        return (f"scaling grid(values x {list(self.value_factors)} per resource, demands x "
                f"{list(self.demand_factors)}, {self.space.fields})")


@dataclass(frozen=True)
class SequentialBestResponse:
    """Shapes: ``gain (P, N)``, ``value_factors, demand_factors (P, N, M)`` of the best candidate;
    ``truthful_utility (P, N)`` (total utility for full, per-round utility summed for online)."""

    gain: np.ndarray
    value_factors: np.ndarray
    demand_factors: np.ndarray
    truthful_utility: np.ndarray
    oracle: str


def _check(values, demands, budget):
    values, demands = np.asarray(values, dtype=np.float64), np.asarray(demands, dtype=np.float64)
    if values.ndim != 3 or demands.ndim != 4 or demands.shape[0] != values.shape[0] or demands.shape[2:] != values.shape[1:]:
        raise ValueError(f"need values (P, N, M) and demands (P, T, N, M), got {values.shape} and {demands.shape}")
    budget = np.broadcast_to(np.asarray(budget, dtype=np.float64), (values.shape[0], values.shape[2]))
    return values, demands, budget


def full_best_response(mechanism: SequentialMechanism, values, demands, budget,
                       misreports: ScalingMisreports | None = None, agents=None) -> SequentialBestResponse:
    """Each agent's best scripted misreport of its values and whole demand sequence.

    ``values (P, N, M)``, ``demands (P, T, N, M)``, ``budget (M,)`` or ``(P, M)``.
    """
    misreports = misreports or ScalingMisreports()
    v, x, b = _check(values, demands, budget)
    p, n, m = v.shape
    truthful = utility(v[:, None], x, mechanism.rollout(v, x, b)).sum(axis=1)  # (P, N)
    fv, fx = misreports.factors(m)
    gain, best_fv, best_fx = np.zeros((p, n)), np.ones((p, n, m)), np.ones((p, n, m))
    for i in range(n) if agents is None else agents:
        for start, stop in candidate_chunks(p, len(fv)):
            rv = np.repeat(v[:, None], stop - start, axis=1)           # (P, C, N, M)
            rx = np.repeat(x[:, None], stop - start, axis=1)           # (P, C, T, N, M)
            rv[:, :, i], rx[:, :, :, i] = misreports.space.clip(
                v[:, None, i] * fv[start:stop], x[:, None, :, i] * fx[start:stop, None])
            alloc = mechanism.rollout(rv, rx, b[:, None])
            u = utility(v[:, None, None, i], x[:, None, :, i], alloc[:, :, :, i]).sum(axis=-1)  # (P, C)
            _keep_best(u - truthful[:, i:i + 1], gain, best_fv, best_fx, i, fv[start:stop], fx[start:stop])
    return SequentialBestResponse(gain, best_fv, best_fx, truthful, f"full, {misreports.label}")


def online_best_response(mechanism: SequentialMechanism, values, demands, budget,
                         misreports: ScalingMisreports | None = None, agents=None) -> SequentialBestResponse:
    """Each agent's best one-round deviation, from the truthful history (max over rounds).

    Values can only be misreported in round 0 (they are reported once); later rounds'
    deviations change the demand report alone.
    """
    misreports = misreports or ScalingMisreports()
    v, x, b = _check(values, demands, budget)
    p, horizon, n, m = x.shape
    fv, fx = misreports.factors(m)
    states, truthful = [], []
    state = mechanism.reset(b)
    for t in range(horizon):
        states.append(state)
        a, state = mechanism.step(state, x[:, t], v if t == 0 else None)
        truthful.append(utility(v, x[:, t], a))
    truthful = np.stack(truthful, axis=1)  # (P, T, N)
    gain, best_fv, best_fx = np.zeros((p, n)), np.ones((p, n, m)), np.ones((p, n, m))
    for t, state in enumerate(states):
        # Later rounds only see demand deviations: drop duplicate value factors there.
        cand_v, cand_x = (fv, fx) if t == 0 else (np.ones((len(misreports.demand_factors), m)),
                                                   np.array([(f,) * m for f in misreports.demand_factors]))
        # The truthful state before round t, with a candidate axis to broadcast against.
        expanded = SequentialState(
            budget=state.budget[:, None], t=state.t,
            past=None if state.past is None else state.past[:, None],
            values=None if state.values is None else state.values[:, None])
        for i in range(n) if agents is None else agents:
            for start, stop in candidate_chunks(p, len(cand_v)):
                c = stop - start
                rv = np.repeat(v[:, None], c, axis=1)
                rx = np.repeat(x[:, None, t], c, axis=1)
                rv[:, :, i], rx[:, :, i] = misreports.space.clip(v[:, None, i] * cand_v[start:stop],
                                                                   x[:, None, t, i] * cand_x[start:stop])
                a, _ = mechanism.step(expanded, rx, rv if t == 0 else None)
                u = utility(v[:, None, i], x[:, None, t, i], a[:, :, i])  # (P, C)
                _keep_best(u - truthful[:, t, i:i + 1], gain, best_fv, best_fx, i, cand_v[start:stop], cand_x[start:stop])
    return SequentialBestResponse(gain, best_fv, best_fx, truthful.sum(axis=1), f"online, {misreports.label}")


def _keep_best(gains, best_gain, best_fv, best_fx, agent, fv, fx):
    """Update agent ``agent``'s best gain and factors from candidate ``gains (P, C)`` in place."""
    pick = gains.argmax(axis=1)
    top = gains[np.arange(len(pick)), pick]
    better = top > best_gain[:, agent]
    best_gain[better, agent] = top[better]
    best_fv[better, agent] = fv[pick[better]]
    best_fx[better, agent] = fx[pick[better]]
