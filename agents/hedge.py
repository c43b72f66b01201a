"""Hedge (multiplicative weights) over a grid of scaled-truth reports, with full-information feedback.

The arms are the candidates of a :class:`~mechzoo.agents.sequential_oracles.ScalingMisreports`
grid: per-resource value factors and a demand factor, held for a whole episode (``K`` arms;
100 for the default grid and M = 2). After each episode batch the learner sees the payoff of
**every** arm — its total true utility had it played that arm against the others' realised
reports (:func:`counterfactual_payoffs`, computed in batch through the mechanism) — and updates

    log w_k <- log w_k + η · payoff_k,        p = softmax(log w).

Learning rate: ``η = sqrt(8 ln K / T) / payoff_range`` for ``T`` updates (the standard Hedge
schedule, regret ``<= payoff_range · sqrt(T ln K / 2)`` for payoffs in an interval of length
``payoff_range``), or a given constant. Payoffs are in utility units; Hedge is invariant to a
shift common to all arms, so ``payoff_range`` is the spread of payoffs *across arms* (default 1).

:class:`HedgePolicy` is also a :class:`~mechzoo.agents.policies.Policy`: at the first round of an
episode (observation ``progress == 0``) it draws an arm per batch row from its current mixed
strategy (``play="sample"``) or takes the most likely one (``play="greedy"``) and reports the
scaled truth for the rest of the episode.
"""
from __future__ import annotations

import math

import numpy as np

from ..mechanisms.sequential import SequentialMechanism
from ..mechanisms.utility import utility
from .oracles import ReportSpace, candidate_chunks
from .policies import ScalingPolicy, ScriptedPolicy
from .sequential_oracles import ScalingMisreports

PLAYS = ("sample", "greedy")


def counterfactual_payoffs(mechanism: SequentialMechanism, values, demands, budget, reported_values,
                           reported_demands, agent: int, value_factors, demand_factors,
                           space: ReportSpace) -> np.ndarray:
    """``agent``'s total true utility for every arm against the others' realised reports.

    True types ``values (P, N, M)``, ``demands (P, T, N, M)``; realised reports of the same
    shapes; ``budget (M,)`` or ``(P, M)``; arms ``value_factors, demand_factors (K, M)``.
    Returns ``(P, K)``.
    """
    p, horizon, n, m = demands.shape
    k = len(value_factors)
    budget = np.broadcast_to(np.asarray(budget, dtype=np.float64), (p, m))
    out = np.empty((p, k))
    for start, stop in candidate_chunks(p, k):
        rv = np.repeat(reported_values[:, None], stop - start, axis=1)     # (P, C, N, M)
        rx = np.repeat(reported_demands[:, None], stop - start, axis=1)    # (P, C, T, N, M)
        rv[:, :, agent], rx[:, :, :, agent] = space.clip(values[:, None, agent] * value_factors[start:stop],
                                                         demands[:, None, :, agent] * demand_factors[start:stop, None])
        alloc = mechanism.rollout(rv, rx, budget[:, None])
        out[:, start:stop] = utility(values[:, None, None, agent], demands[:, None, :, agent],
                                     alloc[:, :, :, agent]).sum(axis=-1)
    return out


class HedgePolicy(ScriptedPolicy):
    """Hedge over the arms of ``misreports`` for a game with ``n_resources`` resources (module docstring).

    ``horizon`` is the number of updates T (needed for the default learning rate);
    ``learning_rate`` overrides the schedule. Randomness comes from the policy's own Generator
    (``seed``; reseeded by ``reset(seed)``).
    """

    def __init__(self, n_resources: int, misreports: ScalingMisreports | None = None, horizon: int | None = None,
                 learning_rate: float | None = None, payoff_range: float = 1.0, play: str = "sample",
                 seed: int | None = None):
        self.misreports = misreports or ScalingMisreports()
        self.value_factors, self.demand_factors = self.misreports.factors(n_resources)
        k = len(self.value_factors)
        if play not in PLAYS:
            raise ValueError(f"play must be one of {PLAYS}, got {play!r}")
        if learning_rate is None:
            if horizon is None or horizon < 1 or not payoff_range > 0:
                raise ValueError("the default learning rate sqrt(8 ln K / T) / payoff_range needs horizon T >= 1 "
                                 "and payoff_range > 0 (or pass learning_rate)")
            learning_rate = math.sqrt(8 * math.log(max(k, 2)) / horizon) / payoff_range
        if not learning_rate > 0 or not math.isfinite(learning_rate):
            raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
        self.learning_rate, self.play = float(learning_rate), play
        self.log_weights = np.zeros(k)
        self.updates = 0
        self.rng = np.random.default_rng(seed)
        self._arms: np.ndarray | None = None

    @property
    def probabilities(self) -> np.ndarray:
        """The current mixed strategy over the ``K`` arms."""
        w = np.exp(self.log_weights - self.log_weights.max())
        return w / w.sum()

    def update(self, payoffs) -> None:
        """One Hedge step from every arm's payoff ``(K,)`` (utility units)."""
        payoffs = np.asarray(payoffs, dtype=np.float64)
        if payoffs.shape != self.log_weights.shape or not np.all(np.isfinite(payoffs)):
            raise ValueError(f"payoffs must be {self.log_weights.shape[0]} finite numbers, got shape {payoffs.shape}")
        self.log_weights = self.log_weights + self.learning_rate * payoffs
        self.updates += 1

    def sample_arms(self, size: int) -> np.ndarray:
        """``size`` arm indices drawn from the mixed strategy (or the greedy arm)."""
        if self.play == "greedy":
            return np.full(size, int(self.log_weights.argmax()))
        return self.rng.choice(len(self.log_weights), size=size, p=self.probabilities)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._arms = None

    def act(self, observation: np.ndarray, agent: str) -> np.ndarray:
        spec = self._spec()
        obs = np.asarray(observation, dtype=np.float64)
        rows = obs.reshape(-1, obs.shape[-1])
        if self._arms is None or len(self._arms) != len(rows) or np.all(rows[:, spec.observation_layout["progress"]] == 0):
            self._arms = self.sample_arms(len(rows))
        arms = ScalingPolicy(self.value_factors[self._arms], self.demand_factors[self._arms], self.misreports.space)
        return arms.bind(spec).act(rows, agent).reshape(obs.shape[:-1] + (-1,))

    def state_dict(self) -> dict:
        """JSON-serialisable learner state (weights, update count, generator state)."""
        return {"log_weights": self.log_weights.tolist(), "updates": self.updates,
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.log_weights = np.asarray(state["log_weights"], dtype=np.float64)
        self.updates = int(state["updates"])
        self.rng.bit_generator.state = state["rng"]
