"""Welfare metrics of allocations: Nash social welfare, its log, utilitarian welfare, efficiency.

Utilities are the agents' true clipped-linear utilities (:mod:`mechzoo.mechanisms.utility`).
Exploitability estimates summarise the gains found by best-response oracles
(:mod:`mechzoo.agents.oracles`), always labelled with the oracle that found them.
"""
from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class ExploitabilityEstimate:
    """Exploitability measured by a best-response oracle over ``P`` profiles.

    ``gains (P, N)`` are the per-profile best gains (a lower bound on the true ones);
    ``per_agent (N,)`` their means with 95% half-widths ``per_agent_ci (N,)``; ``mean`` is the
    RPF-Net paper's reported metric, the mean over agents and profiles, with ``mean_ci``.
    Confidence intervals are normal approximations over profiles.
    """

    gains: np.ndarray
    per_agent: np.ndarray
    per_agent_ci: np.ndarray
    mean: float
    mean_ci: float
    oracle: str

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.mean_ci:.2g} (95% CI over {len(self.gains)} profiles; oracle {self.oracle})"


def summarize_gains(gains, oracle: str) -> ExploitabilityEstimate:
    """Means and 95% confidence half-widths of best-response ``gains (P, N)``."""
    gains = np.atleast_2d(np.asarray(gains, dtype=np.float64))
    p = gains.shape[0]
    half = lambda a: 1.96 * a.std(axis=0, ddof=1) / np.sqrt(p) if p > 1 else np.zeros(a.shape[1:])  # noqa: E731
    per_profile = gains.mean(axis=1)
    return ExploitabilityEstimate(gains, gains.mean(axis=0), half(gains), float(per_profile.mean()),
                                  float(half(per_profile[:, None])[0]), oracle)


@dataclass(frozen=True)
class NashConvEstimate:
    """NashConv of a policy profile: the sum over agents of each one's best-response gain.

    ``gains (P, N)`` are the per-profile gains of each agent's best deviation found (the others
    following the profile; a lower bound on the true ones), ``on_policy (P, N)`` each agent's
    total true utility under the profile. ``per_agent (N,)`` are the mean gains with 95%
    half-widths ``per_agent_ci``; ``nash_conv`` is their **sum** (OpenSpiel's NashConv; our
    games are general-sum, so it is never divided by N) with the half-width ``nash_conv_ci``
    of the per-profile sums. ``oracle`` names the best-response oracle and its budget.
    """

    gains: np.ndarray
    on_policy: np.ndarray
    per_agent: np.ndarray
    per_agent_ci: np.ndarray
    nash_conv: float
    nash_conv_ci: float
    oracle: str

    def __str__(self) -> str:
        return (f"NashConv {self.nash_conv:.4g} ± {self.nash_conv_ci:.2g} (95% CI over {len(self.gains)} profiles; "
                f"per agent {np.round(self.per_agent, 5).tolist()}; oracle {self.oracle})")


def summarize_nash_conv(gains, on_policy, oracle: str) -> NashConvEstimate:
    """NashConv with confidence intervals from best-response ``gains (P, N)`` and ``on_policy (P, N)`` utilities."""
    gains = np.atleast_2d(np.asarray(gains, dtype=np.float64))
    per_agent = summarize_gains(gains, oracle)
    total = summarize_gains(gains.sum(axis=1, keepdims=True), oracle)
    return NashConvEstimate(gains, np.atleast_2d(np.asarray(on_policy, dtype=np.float64)), per_agent.per_agent,
                            per_agent.per_agent_ci, float(total.per_agent[0]), float(total.per_agent_ci[0]), oracle)


def one_shot_exploitability(mechanism, values, demands, budget, oracle) -> ExploitabilityEstimate:
    """Ex-post exploitability of a one-shot mechanism: each agent's best unilateral gain,
    others truthful, for profiles ``values, demands (P, N, M)`` and ``budget (M,)`` or ``(P, M)``."""
    result = oracle.best_response(mechanism, values, demands, budget)
    return summarize_gains(result.gain, result.oracle)
