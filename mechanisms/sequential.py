"""Sequential mechanisms as state machines: SAMA(f) (Algorithm 1 of the SAMA paper) and Independent(f).

Each mechanism is a small state machine, so it can be rolled out in batch without an env::

    state = mech.reset(budget)                                   # budget (..., M)
    a0, state = mech.step(state, demands_0, values)              # values reported once, at t = 0
    a1, state = mech.step(state, demands_1)                      # later rounds: demands only

Rounds are 0-based here (the paper counts from 1). Units: demands, budgets and allocations
share each resource's unit; values are utility per unit.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, replace

import numpy as np

from .feasibility import column_totals
from .registry import OneShotMechanism, make_one_shot
from .validation import Instance, as_float_array, check_instance


SPENT = 1e-12  # a remaining budget below this fraction of the last one is round-off


def _check_horizon(horizon, name: str = "horizon") -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"{name} must be an integer T >= 1, got {horizon!r}")
    return int(horizon)


@dataclass(frozen=True)
class BetaSchedule:
    """The demand-inflation factors β^t_{i,m} of eq. (6).

    ``β^t = E[x^t] / (E[x^t] + sum_{τ>t} max(E[x^τ] - λ^τ std(x^τ), 0))``: the share of the
    (conservatively estimated) remaining demand that falls in round t; 1 where the
    denominator is 0. ``betas`` has shape ``(T, N', M')`` with ``N', M'`` equal to N, M or 1
    (broadcast) and entries in [0, 1] (β ≤ 1 keeps SAMA within the remaining budget);
    ``horizon`` is T, or ``None`` for one ``(1, N', M')`` slice that holds for every round.
    """

    betas: np.ndarray
    horizon: int | None

    def __post_init__(self):
        betas = as_float_array(self.betas, "betas", 3)
        if betas.ndim != 3 or np.any(betas > 1):
            raise ValueError(f"betas must be a (T, N, M) array with entries in [0, 1], got shape {betas.shape}")
        rounds = 1 if self.horizon is None else _check_horizon(self.horizon)
        if betas.shape[0] != rounds:
            raise ValueError(f"betas must have {rounds} round(s) for horizon {self.horizon}, "
                             f"got shape {betas.shape}")
        object.__setattr__(self, "betas", betas)

    @classmethod
    def constant(cls) -> BetaSchedule:
        """β = 1 in every round: SAMA without distribution knowledge (Remark 1); SAMA's default.

        SAMA then inflates no demand but still accounts for past allocation through the bias
        ã. It is the default because it needs no knowledge of the demand distribution,
        and because with the paper's data (E[x] = 0.275, std(x) ≈ 0.331) every λ ≥ 0.83 makes
        all lower confidence bounds 0, i.e. β = 1 anyway.
        """
        return cls(betas=np.ones((1, 1, 1)), horizon=None)

    @classmethod
    def from_moments(cls, mean, std, lam, horizon: int | None = None) -> BetaSchedule:
        """Eq. (6) from per-round demand moments and confidence multipliers λ^τ.

        ``mean, std`` (demand units) broadcast to ``(T, N, M)`` (an ``(N, M)`` array means the
        same distribution every round); ``lam`` is a scalar or ``(T,)`` (λ^τ for round τ,
        0-based; round 0's is unused, only later rounds enter the sum). T is taken from the
        leading dimension of ``mean, std`` or ``lam``, or from ``horizon``, which is required
        when none of them has a T dimension.
        """
        mean = as_float_array(mean, "mean", 0)
        std = as_float_array(std, "std", 0)
        lam = as_float_array(lam, "lam", 0)
        for arr, name, max_ndim in ((mean, "mean", 3), (std, "std", 3), (lam, "lam", 1)):
            if arr.ndim > max_ndim:
                raise ValueError(f"{name} must have at most {max_ndim} dimension(s), got shape {arr.shape}")
        lam = lam.reshape(lam.shape + (1, 1)) if lam.ndim == 1 else lam
        try:
            shape = np.broadcast_shapes(mean.shape, std.shape, lam.shape)
        except ValueError as err:
            raise ValueError(f"mean {mean.shape}, std {std.shape} and lam {lam.shape} do not broadcast "
                             "to (T, N, M)") from err
        if horizon is not None:
            horizon = _check_horizon(horizon)
            if len(shape) == 3 and shape[0] not in (1, horizon):
                raise ValueError(f"horizon {horizon} does not match the T = {shape[0]} of mean, std or lam")
        elif len(shape) < 3:
            raise ValueError("horizon is required when none of mean, std, lam has a round dimension T")
        else:
            horizon = shape[0]
        shape = (horizon,) + ((1, 1) + shape)[-2:]
        mean, std, lam = (np.broadcast_to(arr, shape) for arr in (mean, std, lam))
        lower = np.maximum(mean - lam * std, 0.0)
        # Sum over the rounds after t: reversed cumulative sum, shifted by one round.
        later = np.cumsum(lower[::-1], axis=0)[::-1] - lower
        denominator = mean + later
        betas = np.where(denominator > 0, mean / np.where(denominator > 0, denominator, 1.0), 1.0)
        return cls(betas=betas, horizon=horizon)

    @classmethod
    def theorem3(cls, mean, std, horizon: int, xi: float) -> BetaSchedule:
        """Eq. (6) with Theorem 3's multipliers λ^τ = sqrt((T - τ) / ξ) (τ 1-based).

        ``xi`` in (0, 1) is the failure probability of the regret bound; ``mean, std`` as in
        :meth:`from_moments`. λ is 0 for the last round, whose bound is then its mean: with
        the paper's data this gives β = 1/2 in every round but the last, not β = 1.
        """
        horizon = _check_horizon(horizon)
        if not np.isfinite(xi) or not 0 < xi < 1:
            raise ValueError(f"xi must be a probability in (0, 1), got {xi!r}")
        rounds_left = horizon - 1 - np.arange(horizon, dtype=np.float64)
        return cls.from_moments(mean, std, np.sqrt(rounds_left / xi), horizon)

    def beta(self, t: int) -> np.ndarray:
        """β_{i,m} for round ``t`` (0-based): shape ``(N', M')``, broadcastable to ``(N, M)``."""
        if self.horizon is None:
            return self.betas[0]
        if not 0 <= t < self.horizon:
            raise ValueError(f"round t = {t} is outside the β schedule's horizon T = {self.horizon}")
        return self.betas[t]


@dataclass(frozen=True)
class SequentialState:
    """State between rounds. Shapes: ``budget (..., M)``, ``past, values (..., N, M)``.

    ``budget`` is the remaining budget b^t, ``past`` the cumulative allocation ã^t and
    ``values`` the values reported in round 0; ``past`` and ``values`` are ``None`` until the
    first round (N is not known before it). ``t`` is the next round, 0-based.
    """

    budget: np.ndarray
    past: np.ndarray | None
    t: int
    values: np.ndarray | None


class SequentialMechanism(abc.ABC):
    """Common state machine of SAMA and Independent; subclasses define one round's allocation."""

    name: str

    def __init__(self, one_shot: str | OneShotMechanism):
        self.one_shot = make_one_shot(one_shot)

    @abc.abstractmethod
    def _allocate(self, t: int, inst: Instance) -> np.ndarray:
        """Round ``t``'s allocation ``(..., N, M)`` from the validated reports, remaining budget and ã."""

    def reset(self, budget) -> SequentialState:
        """The state before round 0 for total budgets ``budget (..., M)``."""
        budget = np.array(as_float_array(budget, "budget", 1))
        if budget.shape[-1] < 1:
            raise ValueError(f"budget must have M >= 1 resources, got shape {budget.shape}")
        return SequentialState(budget=budget, past=None, t=0, values=None)

    def step(self, state: SequentialState, demands, values=None) -> tuple[np.ndarray, SequentialState]:
        """Allocate one round: ``demands (..., N, M)`` -> ``(allocation (..., N, M), next state)``.

        ``values (..., N, M)`` must be given in round 0; they are stored in the state and
        ignored in later rounds (values are reported once). Batch dimensions of the state and
        the reports broadcast.
        """
        if not isinstance(state, SequentialState):
            raise ValueError(f"state must be a SequentialState from reset(), got {type(state).__name__}")
        if state.values is None:
            if values is None:
                raise ValueError("values must be reported in round 0")
        else:
            values = state.values
        inst = check_instance(values, demands, state.budget, state.past)
        a = self._allocate(state.t, inst)
        remaining = inst.budget - column_totals(a)
        new_state = SequentialState(
            # What round-off leaves of a spent budget (a few ulps) counts as spent.
            budget=np.where(remaining > SPENT * inst.budget, remaining, 0.0),
            past=inst.past + a,
            t=state.t + 1,
            values=np.array(inst.values) if state.values is None else state.values,
        )
        return a, new_state

    def rollout(self, values, demands, budget) -> np.ndarray:
        """Run all rounds: ``values (..., N, M)``, ``demands (..., T, N, M)``, ``budget (..., M)``.

        Returns the allocations ``(..., T, N, M)``; leading dimensions broadcast, and only the
        T rounds are looped over.
        """
        demands = as_float_array(demands, "demands", 3)
        _check_horizon(demands.shape[-3], "the number of rounds T (demands axis -3)")
        state = self.reset(budget)
        allocations = []
        for t in range(demands.shape[-3]):
            a, state = self.step(state, demands[..., t, :, :], values if t == 0 else None)
            allocations.append(a)
        return np.stack(allocations, axis=-3)


class SAMA(SequentialMechanism):
    """SAMA(f): the one-shot rule f on inflated demand with the past allocation as bias.

    Each round: ``β_i = mean_m β_{i,m}`` (1 where it is 0: an agent expected to demand
    nothing this round is treated as if this were its last round), ``y = x / β_i``,
    ``c = f(v, y, b, ã)``, ``a = min(β_i c, x)``. ``beta_schedule`` defaults to
    :meth:`BetaSchedule.constant` (β = 1).
    """

    def __init__(self, one_shot: str | OneShotMechanism, beta_schedule: BetaSchedule | None = None):
        super().__init__(one_shot)
        if beta_schedule is None:
            beta_schedule = BetaSchedule.constant()
        if not isinstance(beta_schedule, BetaSchedule):
            raise ValueError(f"beta_schedule must be a BetaSchedule, got {type(beta_schedule).__name__}")
        self.beta_schedule = beta_schedule
        self.name = f"sama({self.one_shot.name})"

    def _allocate(self, t, inst):
        beta, demands = self.beta_schedule.beta(t), inst.demands
        if any(k not in (1, d) for k, d in zip(beta.shape, demands.shape[-2:])):
            raise ValueError(f"beta_schedule of shape {self.beta_schedule.betas.shape[1:]} per round does not "
                             f"broadcast to (N, M) = {demands.shape[-2:]}")
        if np.all(beta == 1.0):  # no inflation (the default schedule): the instance is f's input as is
            return self.one_shot.allocate_checked(inst)
        beta = np.broadcast_to(beta, demands.shape[-2:]).mean(axis=-1)
        beta = np.where(beta > 0, beta, 1.0)[:, None]
        inflated = self.one_shot(inst.values, demands / beta, inst.budget, inst.past)
        return np.minimum(beta * inflated, demands)


class Independent(SequentialMechanism):
    """Independent(f): the one-shot rule f on each round's reports and the remaining budget, no bias."""

    def __init__(self, one_shot: str | OneShotMechanism):
        super().__init__(one_shot)
        self.name = f"independent({self.one_shot.name})"

    def _allocate(self, t, inst):
        return self.one_shot.allocate_checked(replace(inst, past=np.zeros(inst.past.shape)))
