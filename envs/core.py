"""The allocation game engine shared by the single PettingZoo env and its batched form.

:class:`GameConfig` holds validated constructor arguments; :class:`GameEngine` steps a batch
of ``B`` independent instances of the game through one batched call of the sequential
mechanism per round. The single env (:mod:`.sequential_allocation`) is the engine with
``B = 1`` plus PettingZoo's dict interface; the batched env (:mod:`.batched`) exposes the
engine's arrays directly. Encoding of observations and decoding of actions live only here.

Rounds are 0-based. Shapes: ``B`` instances, ``N`` agents, ``M`` resources, ``T`` rounds.

Observation of agent i (flat float32, see :func:`observation_layout`)::

    values                   (M)  true values v_i (fixed over the episode)
    demands                  (M)  true demand x^t_i of the round about to be played
                                  (zeros once the episode is over)
    progress                 (1)  t / T, the number of rounds already played over the horizon
    remaining_budget         (M)  b^t, what is left of each resource (public)
    cumulative_allocation    (M)  ã^t_i, own allocation summed over past rounds
    last_allocation          (M)  a^{t-1}_i (zeros before round 0)
  with observe_others=True, for the other agents j != i in increasing index order:
    others_reported_values   ((N-1) M)  values reported in round 0 (zeros before it)
    others_reported_demands  ((N-1) M)  demands reported in the last round (zeros before round 0)
    others_cumulative_allocation ((N-1) M)

Action of agent i (flat float32, see :func:`action_layout`): ``[values part (M), demands part (M)]``.
The values part is used only in round 0 (values are reported once, Algorithm 1 of the SAMA
paper); later it is ignored, though still validated. ``report_mode``:

* ``"relative"`` (default): log-multipliers of the truth, each entry in
  ``[-report_bound, report_bound]`` (default ``log 10``): report = truth * exp(action). The zero
  action is exactly truthful. A zero true demand is always reported as 0 in this mode.
* ``"absolute"``: the report itself, values in ``[value_low, value_high]`` and demands in
  ``[0, demand_high]`` of the type distribution.

Finite actions outside these bounds are clipped (and counted) or, with ``strict=True``,
rejected with a ``ValueError``; NaN or infinite entries are always a ``ValueError`` naming the
agent and the field.

True types are rounded to float32 at draw time, so observations represent them exactly and an
absolute-mode truthful action reproduces the true type bit for bit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from gymnasium import spaces

from ..mechanisms import SAMA, BetaSchedule, Independent, OneShotMechanism, make_one_shot, one_shot_names, utility
from ..mechanisms.sequential import SequentialState
from .types import TypeDistribution, UniformBernoulliTypes

METAS = ("sama", "independent")
REPORT_MODES = ("relative", "absolute")
RENDER_MODES = ("human", "ansi", "rgb_array")
DEFAULT_REPORT_BOUND = math.log(10.0)
DEFAULT_BUDGET_SCALE = 0.5


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _finite_float(value, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a finite number, got {value!r}") from err
    if not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return out


@dataclass(frozen=True)
class GameConfig:
    """Validated parameters of the sequential allocation game (build with :func:`make_config`).

    ``budget`` is the total budget ``B (M,)`` of each resource for the whole horizon;
    ``one_shot`` is what was passed (a registry name or a :class:`OneShotMechanism`).
    """

    n_agents: int
    n_resources: int
    horizon: int
    meta: str
    one_shot: str | OneShotMechanism
    budget: np.ndarray
    type_distribution: TypeDistribution
    report_mode: str
    report_bound: float
    observe_others: bool
    strict: bool
    beta_schedule: BetaSchedule | None = None

    def build_mechanism(self):
        """A fresh ``SAMA(f)`` or ``Independent(f)`` state machine for this game."""
        one_shot = make_one_shot(self.one_shot)
        if self.meta == "sama":
            return SAMA(one_shot, self.beta_schedule)
        return Independent(one_shot)


def make_config(n_agents=2, n_resources=2, horizon=10, meta="sama", one_shot="pf", budget=None,
                budget_scale=None, type_distribution=None, report_mode="relative",
                report_bound=DEFAULT_REPORT_BOUND, observe_others=False, strict=False,
                beta_schedule=None) -> GameConfig:
    """Validate the game's constructor arguments; every error is a ``ValueError`` saying what is allowed.

    ``budget`` (scalar or ``(M,)``, non-negative, total over the horizon) and ``budget_scale``
    α are exclusive; without either, ``B_m = α N T / 2`` with α = 0.5 (the SAMA paper's
    default ``N T / 4``).
    """
    n = _positive_int(n_agents, "n_agents (N)")
    m = _positive_int(n_resources, "n_resources (M)")
    t = _positive_int(horizon, "horizon (T)")
    if meta not in METAS:
        raise ValueError(f"meta must be one of {METAS}, got {meta!r}")
    if not isinstance(one_shot, (str, OneShotMechanism)):
        raise ValueError(f"one_shot must be a registered name ({', '.join(one_shot_names())}) or a "
                         f"OneShotMechanism, got {type(one_shot).__name__}")
    make_one_shot(one_shot)  # raises ValueError listing the allowed names
    if budget is not None and budget_scale is not None:
        raise ValueError("pass either budget (absolute, per resource) or budget_scale (alpha in B = alpha*N*T/2), not both")
    if budget is None:
        alpha = DEFAULT_BUDGET_SCALE if budget_scale is None else _finite_float(budget_scale, "budget_scale")
        if alpha < 0:
            raise ValueError(f"budget_scale must be a finite number >= 0, got {budget_scale!r}")
        budget_arr = np.full(m, alpha * n * t / 2.0)
    else:
        try:
            budget_arr = np.asarray(budget, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"budget must be a number or an array of M = {m} numbers, got {budget!r}") from err
        if budget_arr.ndim == 0:
            budget_arr = np.full(m, float(budget_arr))
        if budget_arr.shape != (m,):
            raise ValueError(f"budget must be a scalar or have shape (M,) = ({m},), got shape {budget_arr.shape}")
        if not np.all(np.isfinite(budget_arr)) or np.any(budget_arr < 0):
            raise ValueError(f"budget must be finite and >= 0 for every resource, got {budget_arr.tolist()}")
        budget_arr = budget_arr.copy()
    budget_arr.setflags(write=False)
    if type_distribution is None:
        type_distribution = UniformBernoulliTypes()
    _check_type_distribution(type_distribution)
    if report_mode not in REPORT_MODES:
        raise ValueError(f"report_mode must be one of {REPORT_MODES}, got {report_mode!r}")
    bound = _finite_float(report_bound, "report_bound")
    if bound <= 0:
        raise ValueError(f"report_bound must be a finite number > 0 (log-multiplier bound), got {report_bound!r}")
    if not isinstance(observe_others, (bool, np.bool_)):
        raise ValueError(f"observe_others must be True or False, got {observe_others!r}")
    if not isinstance(strict, (bool, np.bool_)):
        raise ValueError(f"strict must be True or False, got {strict!r}")
    if beta_schedule is not None:
        if meta != "sama":
            raise ValueError("beta_schedule applies to meta='sama' only")
        if not isinstance(beta_schedule, BetaSchedule):
            raise ValueError(f"beta_schedule must be a BetaSchedule, got {type(beta_schedule).__name__}")
        if beta_schedule.horizon is not None and beta_schedule.horizon != t:
            raise ValueError(f"beta_schedule has horizon {beta_schedule.horizon}, the game has horizon T = {t}")
    return GameConfig(n, m, t, meta, one_shot, budget_arr, type_distribution, report_mode, bound,
                      bool(observe_others), bool(strict), beta_schedule)


def _check_type_distribution(dist) -> None:
    missing = [name for name in ("value_low", "value_high", "demand_high", "sample") if not hasattr(dist, name)]
    if missing or not callable(getattr(dist, "sample", None)):
        raise ValueError("type_distribution must follow the TypeDistribution protocol (value_low, value_high, "
                         f"demand_high, sample(rng, n_agents, n_resources, horizon)); missing {missing or ['sample()']}")
    lo, hi, dhi = (_finite_float(getattr(dist, k), f"type_distribution.{k}")
                   for k in ("value_low", "value_high", "demand_high"))
    if not 0 <= lo <= hi or dhi <= 0:
        raise ValueError(f"type_distribution needs 0 <= value_low <= value_high and demand_high > 0, got {lo}, {hi}, {dhi}")


def _fields(pairs: Sequence[tuple[str, int]]) -> dict[str, slice]:
    out, start = {}, 0
    for name, size in pairs:
        out[name] = slice(start, start + size)
        start += size
    return out


def observation_layout(n_agents: int, n_resources: int, observe_others: bool = False) -> dict[str, slice]:
    """Field name -> slice of the flat observation vector (see the module docstring)."""
    m, others = n_resources, (n_agents - 1) * n_resources
    pairs = [("values", m), ("demands", m), ("progress", 1), ("remaining_budget", m),
             ("cumulative_allocation", m), ("last_allocation", m)]
    if observe_others:
        pairs += [("others_reported_values", others), ("others_reported_demands", others),
                  ("others_cumulative_allocation", others)]
    return _fields(pairs)


def state_layout(n_agents: int, n_resources: int) -> dict[str, slice]:
    """Field name -> slice of the flat global state (PettingZoo's ``state()``): every agent's
    true values, this round's true demands, cumulative allocation and reported values
    (``N * M`` each, agent-major), then the remaining budget ``(M,)`` and ``t / T``."""
    nm = n_agents * n_resources
    return _fields([("values", nm), ("demands", nm), ("cumulative_allocation", nm), ("reported_values", nm),
                    ("remaining_budget", n_resources), ("progress", 1)])


def action_layout(n_resources: int) -> dict[str, slice]:
    """Field name -> slice of the flat action vector: ``values`` then ``demands``, M entries each."""
    return _fields([("values", n_resources), ("demands", n_resources)])


@dataclass
class StepOutcome:
    """One round of a batch. Shapes ``(B, N, M)`` for reports and allocations, ``(B, N)`` otherwise.

    ``reported_values`` are the values in force (reported in round 0). ``truthful_*`` come from
    the shadow run in which everyone reports truthfully on the same draws. ``clipped`` counts
    the action entries clipped this round; ``terminated``/``truncated`` are ``(B,)``.
    """

    round: int
    reported_values: np.ndarray
    reported_demands: np.ndarray
    true_demands: np.ndarray
    allocation: np.ndarray
    utility: np.ndarray
    truthful_allocation: np.ndarray
    truthful_utility: np.ndarray
    clipped: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray


AgentNamer = Callable[[int, int], str]


def _nonnegative_box(layout: dict[str, slice], tops: dict[str, float]) -> spaces.Box:
    """A float32 Box ``[0, top]`` per field of a flat layout, with a little headroom against
    float rounding of products such as ``v * exp(bound)``."""
    high = np.empty(max(sl.stop for sl in layout.values()), dtype=np.float64)
    for name, sl in layout.items():
        high[sl] = tops[name]
    high = np.nextafter((high * (1 + 1e-6)).astype(np.float32), np.float32(np.inf))
    return spaces.Box(np.zeros(high.size, dtype=np.float32), high, dtype=np.float32)


class GameEngine:
    """A batch of ``n_envs`` lock-step instances of the sequential allocation game.

    Each round runs the mechanism once for the real reports and, stacked in the same batched
    call, for the truthful shadow run of every instance whose real history has left the
    truthful one (while an instance has been truthful so far, its shadow equals the real run
    and is not recomputed).
    """

    def __init__(self, config: GameConfig, n_envs: int = 1):
        self.config = config
        self.n_envs = _positive_int(n_envs, "n_envs")
        c = config
        self.n, self.m, self.horizon = c.n_agents, c.n_resources, c.horizon
        self.mechanism = c.build_mechanism()
        self.obs_layout = observation_layout(self.n, self.m, c.observe_others)
        self.act_layout = action_layout(self.m)
        self.state_layout = state_layout(self.n, self.m)
        self.obs_dim = max(s.stop for s in self.obs_layout.values())
        self.act_dim = 2 * self.m
        dist = c.type_distribution
        self.value_low, self.value_high = float(dist.value_low), float(dist.value_high)
        self.demand_high = float(dist.demand_high)
        self._build_spaces()
        others = np.array([[j for j in range(self.n) if j != i] for i in range(self.n)], dtype=np.intp)
        self._others = others.reshape(self.n, self.n - 1)
        self.t = 0
        self.values = None  # marks "not reset yet"

    # ----------------------------------------------------------------- spaces
    def _build_spaces(self) -> None:
        c, m = self.config, self.m
        if c.report_mode == "relative":
            low = np.full(2 * m, -c.report_bound, dtype=np.float32)
            high = np.full(2 * m, c.report_bound, dtype=np.float32)
            grow = math.exp(c.report_bound)
        else:
            low = np.concatenate([np.full(m, self.value_low), np.zeros(m)]).astype(np.float32)
            high = np.concatenate([np.full(m, self.value_high), np.full(m, self.demand_high)]).astype(np.float32)
            grow = 1.0
        self.action_space = spaces.Box(low, high, dtype=np.float32)
        # Clipping uses the float32 bounds exactly, so a clipped action is inside the space.
        self.action_low = low.astype(np.float64)
        self.action_high = high.astype(np.float64)
        budget_high = float(np.max(c.budget, initial=0.0))
        tops = {"values": self.value_high, "demands": self.demand_high, "progress": 1.0,
                "remaining_budget": budget_high, "cumulative_allocation": budget_high,
                "last_allocation": budget_high, "others_reported_values": self.value_high * grow,
                "others_reported_demands": self.demand_high * grow, "others_cumulative_allocation": budget_high,
                "reported_values": self.value_high * grow}
        self.observation_space = _nonnegative_box(self.obs_layout, tops)
        self.state_space = _nonnegative_box(self.state_layout, tops)

    def action_field(self, k: int) -> str:
        """Human-readable name of action entry ``k``, e.g. ``"demands[1]"``."""
        for name, sl in self.act_layout.items():
            if sl.start <= k < sl.stop:
                return f"{name}[{k - sl.start}]"
        raise IndexError(k)

    # ----------------------------------------------------------------- episode
    def reset(self, rngs: Sequence[np.random.Generator]) -> None:
        """Draw every instance's types for the whole episode (one ``sample`` per instance) and restart."""
        if len(rngs) != self.n_envs:
            raise ValueError(f"need one generator per instance ({self.n_envs}), got {len(rngs)}")
        dist, n, m, T = self.config.type_distribution, self.n, self.m, self.horizon
        values = np.empty((self.n_envs, n, m))
        demands = np.empty((self.n_envs, T, n, m))
        for k, rng in enumerate(rngs):
            v, x = dist.sample(rng, n, m, T)
            v, x = np.asarray(v, dtype=np.float64), np.asarray(x, dtype=np.float64)
            if v.shape != (n, m) or x.shape != (T, n, m):
                raise ValueError(f"type_distribution.sample returned shapes {v.shape}, {x.shape}; "
                                 f"expected (N, M) = {(n, m)} and (T, N, M) = {(T, n, m)}")
            values[k], demands[k] = v, x
        self.load_types(values, demands)

    def load_types(self, values: np.ndarray, demands: np.ndarray) -> None:
        """Restart with given true types ``values (B, N, M)``, ``demands (B, T, N, M)``.

        The types must lie in the type distribution's support; they are rounded to float32
        (as drawn types are), so that observations represent them exactly.
        """
        values, demands = np.asarray(values, dtype=np.float64), np.asarray(demands, dtype=np.float64)
        n, m, T = self.n, self.m, self.horizon
        if values.shape != (self.n_envs, n, m) or demands.shape != (self.n_envs, T, n, m):
            raise ValueError(f"types must have shapes values (B, N, M) = {(self.n_envs, n, m)} and demands "
                             f"(B, T, N, M) = {(self.n_envs, T, n, m)}, got {values.shape} and {demands.shape}")
        if not (np.all(values >= self.value_low) and np.all(values <= self.value_high)
                and np.all(demands >= 0) and np.all(demands <= self.demand_high)):
            raise ValueError("the types (drawn by type_distribution.sample or given) lie outside its declared support "
                             f"(values in [{self.value_low}, {self.value_high}], demands in [0, {self.demand_high}]) "
                             "or NaN")
        self.set_types(values.astype(np.float32).astype(np.float64),
                       demands.astype(np.float32).astype(np.float64))

    def set_types(self, values: np.ndarray, demands: np.ndarray) -> None:
        """Restart the episode with given true types ``values (B, N, M)``, ``demands (B, T, N, M)``."""
        B, n, m = self.n_envs, self.n, self.m
        self.values, self.demands = values, demands
        self.t = 0
        self.budget = np.broadcast_to(self.config.budget, (B, m)).copy()
        self.past = np.zeros((B, n, m))
        self.shadow_budget = self.budget.copy()
        self.shadow_past = self.past.copy()
        self.reported_values = np.zeros((B, n, m))
        self.last_reported_demands = np.zeros((B, n, m))
        self.last_allocation = np.zeros((B, n, m))
        self.cumulative_utility = np.zeros((B, n))
        self.cumulative_truthful_utility = np.zeros((B, n))
        self.clipped_total = np.zeros((B, n), dtype=np.int64)
        self.in_sync = np.ones(B, dtype=bool)
        self.finished = False
        self.last_outcome: StepOutcome | None = None

    @property
    def done(self) -> bool:
        return self.t >= self.horizon

    def observe(self) -> np.ndarray:
        """Observations of every agent of every instance: ``(B, N, obs_dim)`` float32."""
        B, n = self.n_envs, self.n
        L = self.obs_layout
        obs = np.empty((B, n, self.obs_dim), dtype=np.float32)
        obs[..., L["values"]] = self.values
        obs[..., L["demands"]] = self.demands[:, self.t] if self.t < self.horizon else 0.0
        obs[..., L["progress"]] = self.t / self.horizon
        obs[..., L["remaining_budget"]] = self.budget[:, None, :]
        obs[..., L["cumulative_allocation"]] = self.past
        obs[..., L["last_allocation"]] = self.last_allocation
        if self.config.observe_others:
            for name, source in (("others_reported_values", self.reported_values),
                                 ("others_reported_demands", self.last_reported_demands),
                                 ("others_cumulative_allocation", self.past)):
                obs[..., L[name]] = source[:, self._others].reshape(B, n, -1)
        return obs

    def global_state(self) -> np.ndarray:
        """The global state of every instance ``(B, state_dim)`` float32 (layout :func:`state_layout`)."""
        if self.values is None:
            raise ValueError("the game has not been reset: call reset() first")
        B, L = self.n_envs, self.state_layout
        state = np.empty((B, self.state_space.shape[0]), dtype=np.float32)
        state[:, L["values"]] = self.values.reshape(B, -1)
        state[:, L["demands"]] = self.demands[:, self.t].reshape(B, -1) if self.t < self.horizon else 0.0
        state[:, L["cumulative_allocation"]] = self.past.reshape(B, -1)
        state[:, L["reported_values"]] = self.reported_values.reshape(B, -1)
        state[:, L["remaining_budget"]] = self.budget
        state[:, L["progress"]] = self.t / self.horizon
        return state

    def truthful_actions(self) -> np.ndarray:
        """The actions ``(B, N, act_dim)`` float32 that report the true types this round."""
        if self.values is None:
            raise ValueError("the game has not been reset: call reset() first")
        if self.config.report_mode == "relative":
            return np.zeros((self.n_envs, self.n, self.act_dim), dtype=np.float32)
        x = self.demands[:, min(self.t, self.horizon - 1)]
        return np.concatenate([self.values, x], axis=-1).astype(np.float32)

    # ----------------------------------------------------------------- actions
    def check_actions(self, actions: np.ndarray, namer: AgentNamer) -> None:
        """Raise ``ValueError`` naming agent and field for NaN/inf entries (``actions (B, N, act_dim)``)."""
        finite = np.isfinite(actions)
        if not finite.all():
            b, i, k = np.argwhere(~finite)[0]
            raise ValueError(f"{namer(int(b), int(i))}: action field {self.action_field(int(k))} is "
                             f"{actions[b, i, k]}; actions must be finite")

    def decode(self, actions: np.ndarray, namer: AgentNamer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Actions ``(B, N, act_dim)`` float64 (finite) -> ``(reported values, reported demands, clip counts)``.

        Reports are ``(B, N, M)`` float64 for the round about to be played; clip counts ``(B, N)``.
        """
        m = self.m
        low, high = self.action_low, self.action_high
        outside = (actions < low) | (actions > high)
        clips = np.zeros(outside.shape[:-1], dtype=np.int64)
        if outside.any():
            if self.config.strict:
                b, i, k = np.argwhere(outside)[0]
                raise ValueError(f"{namer(int(b), int(i))}: action field {self.action_field(int(k))} = "
                                 f"{actions[b, i, k]} is outside [{low[k]}, {high[k]}] (strict=True; "
                                 "with strict=False it would be clipped)")
            actions = np.clip(actions, low, high)
            clips = np.count_nonzero(outside, axis=-1)
        if self.config.report_mode == "relative":
            factors = np.exp(actions)
            return self.values * factors[..., :m], self.demands[:, self.t] * factors[..., m:], clips
        return actions[..., :m].copy(), actions[..., m:].copy(), clips

    # ----------------------------------------------------------------- step
    def step(self, actions: np.ndarray, namer: AgentNamer, max_cycles: int | None = None) -> StepOutcome:
        """Play one round. ``actions (B, N, act_dim)``: any float array; validated here."""
        if self.values is None:
            raise ValueError("the game has not been reset: call reset() first")
        if self.finished:
            raise ValueError("the episode is over (terminated or truncated): call reset() before stepping again")
        actions = np.asarray(actions, dtype=np.float64)
        expected = (self.n_envs, self.n, self.act_dim)
        if actions.shape != expected:
            raise ValueError(f"actions must have shape (n_envs, N, act_dim) = {expected}, got {actions.shape}")
        self.check_actions(actions, namer)
        rep_v, rep_x, clips = self.decode(actions, namer)
        B, t = self.n_envs, self.t
        x_true = self.demands[:, t]
        truthful = np.all(rep_x == x_true, axis=(1, 2))  # earlier rounds are accounted for by in_sync
        if t == 0:
            reported_values = rep_v  # values are reported once, in round 0
            truthful &= np.all(rep_v == self.values, axis=(1, 2))
        else:
            reported_values = self.reported_values
        shadow = np.flatnonzero(~(self.in_sync & truthful))
        if shadow.size:  # stack the shadow runs that differ from the real ones into the same call
            state = SequentialState(
                budget=np.concatenate([self.budget, self.shadow_budget[shadow]]),
                past=np.concatenate([self.past, self.shadow_past[shadow]]),
                t=t,
                values=np.concatenate([reported_values, self.values[shadow]]),
            )
            demands = np.concatenate([rep_x, x_true[shadow]])
        else:
            state = SequentialState(budget=self.budget, past=self.past, t=t, values=reported_values)
            demands = rep_x
        allocation, new_state = self.mechanism.step(state, demands)
        # nothing above changed the game: a step rejected with an error leaves it as it was
        self.reported_values = reported_values
        real = allocation[:B]
        self.budget, self.past = new_state.budget[:B], new_state.past[:B]
        u = utility(self.values, x_true, real)
        if shadow.size:
            truthful_allocation = real.copy()
            truthful_allocation[shadow] = allocation[B:]
            self.shadow_budget, self.shadow_past = self.budget.copy(), self.past.copy()
            self.shadow_budget[shadow] = new_state.budget[B:]
            self.shadow_past[shadow] = new_state.past[B:]
            u_truth = utility(self.values, x_true, truthful_allocation)
        else:  # every instance truthful so far: the shadow run is the real run
            truthful_allocation, u_truth = real, u
            self.shadow_budget, self.shadow_past = self.budget, self.past
        self.in_sync &= truthful

        self.cumulative_utility += u
        self.cumulative_truthful_utility += u_truth
        self.clipped_total += clips
        self.last_allocation = real
        self.last_reported_demands = rep_x
        self.t = t + 1
        terminated = self.t >= self.horizon
        truncated = (not terminated) and max_cycles is not None and self.t >= max_cycles
        self.finished = terminated or truncated
        outcome = StepOutcome(
            round=t, reported_values=self.reported_values, reported_demands=rep_x, true_demands=x_true,
            allocation=real, utility=u, truthful_allocation=truthful_allocation, truthful_utility=u_truth,
            clipped=clips, terminated=np.full(B, terminated), truncated=np.full(B, truncated),
        )
        self.last_outcome = outcome
        return outcome

    def info_arrays(self, outcome: StepOutcome) -> dict[str, np.ndarray]:
        """The per-step info fields as arrays with leading ``(B, N)`` (documented in :mod:`.sequential_allocation`)."""
        return {
            "round": outcome.round,
            "reported_values": outcome.reported_values,
            "reported_demands": outcome.reported_demands,
            "true_demands": outcome.true_demands,
            "allocation": outcome.allocation,
            "utility": outcome.utility,
            "truthful_allocation": outcome.truthful_allocation,
            "truthful_utility": outcome.truthful_utility,
            "gain": outcome.utility - outcome.truthful_utility,
            "cumulative_utility": self.cumulative_utility.copy(),
            "cumulative_truthful_utility": self.cumulative_truthful_utility.copy(),
            "cumulative_gain": self.cumulative_utility - self.cumulative_truthful_utility,
            "clipped": outcome.clipped,
            "clipped_total": self.clipped_total.copy(),
        }

    # ----------------------------------------------------------------- pickling
    def __getstate__(self):
        state = self.__dict__.copy()
        if isinstance(self.config.one_shot, str):  # registry closures do not pickle; rebuild by name
            state["mechanism"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.mechanism is None:
            self.mechanism = self.config.build_mechanism()


class EngineLayouts:
    """The observation and action layouts of a game, for classes that hold a ``_engine``."""

    _engine: GameEngine

    @property
    def observation_layout(self) -> dict[str, slice]:
        """Field name -> slice of the flat observation (see :mod:`mechzoo.envs.core`)."""
        return dict(self._engine.obs_layout)

    @property
    def action_layout(self) -> dict[str, slice]:
        """Field name -> slice of the flat action: ``values`` (used in round 0 only), ``demands``."""
        return dict(self._engine.act_layout)

    @property
    def state_layout(self) -> dict[str, slice]:
        """Field name -> slice of the flat global state (see :func:`state_layout`)."""
        return dict(self._engine.state_layout)
