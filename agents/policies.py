"""One policy protocol for every allocation game, scripted misreporters, an SB3 adapter, rollouts.

A **policy** is any object with two methods (:class:`Policy`)::

    act(observation, agent) -> action     # observation (obs_dim,) or (B, obs_dim) float array,
                                          # action (act_dim,) or (B, act_dim) in the game's encoding
    reset(seed=None) -> None              # new episode; reseed the policy's own Generator if given

``observation`` is the game's flat observation (``env.observation_layout``) of ``agent``; a
2-D array is a batch of ``B`` independent instances (the batched env's ``obs[:, i]``) and the
action has the same leading shape. Actions are in the game's action encoding
(``env.action_layout``; ``report_mode`` ``"relative"``: log-multipliers of the truth, or
``"absolute"``: the reports), any float dtype. ``reset`` starts an episode: it clears
per-episode state and, given a seed, reseeds the policy's ``numpy.random.Generator``; learned
parameters are kept. Anything with these two methods can be handed to the rollouts, to
:class:`~mechzoo.agents.best_response_env.BestResponseEnv` and to
:func:`~mechzoo.agents.nash_conv.nash_conv` (e.g. a wrapper around an RLlib module).

Scripted policies need the game's layouts; they are created unbound (``TruthfulPolicy()``)
and bound to a game with :func:`bind` (done by every helper here), which returns a bound copy.

:func:`rollout` plays a profile ``{agent: policy}`` in a PettingZoo game or in the batched game
and returns each agent's total true utility and its truthful-shadow utility (everyone truthful
on the same draws), with the reports' distance from the truth.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Mapping, Protocol, runtime_checkable

import numpy as np

from ..envs import BatchedSequentialAllocation, SequentialAllocationEnv
from .oracles import ReportSpace

LOG_FLOOR = 1e-12  # reports below this count as this in log-distances from the truth


@runtime_checkable
class Policy(Protocol):
    """What the games need from a player (see the module docstring)."""

    def act(self, observation: np.ndarray, agent: str) -> np.ndarray:
        """Action(s) ``(act_dim,)`` or ``(B, act_dim)`` for observation(s) ``(obs_dim,)`` or ``(B, obs_dim)``."""

    def reset(self, seed: int | None = None) -> None:
        """Start an episode; reseed the policy's Generator when ``seed`` is given."""


@dataclass(frozen=True)
class GameSpec:
    """What a policy may know about a game: agents, sizes, encodings and bounds.

    ``action_low, action_high (act_dim,)`` and ``observation_high (obs_dim,)`` are the bounds
    of the game's Box spaces (float64); ``support`` is the type distribution's box of reports.
    """

    agents: tuple[str, ...]
    n_resources: int
    horizon: int
    report_mode: str
    observation_layout: dict
    action_layout: dict
    action_low: np.ndarray
    action_high: np.ndarray
    observation_high: np.ndarray
    support: ReportSpace

    @classmethod
    def of(cls, game) -> GameSpec:
        """The spec of a ``SequentialAllocationEnv``, ``BatchedSequentialAllocation``, anything with a
        ``.game`` attribute holding one (``BestResponseEnv``), a dict of game kwargs, or a spec."""
        if isinstance(game, GameSpec):
            return game
        if isinstance(game, Mapping):
            game = SequentialAllocationEnv(**game)
        game = getattr(game, "game", game)
        if not isinstance(game, (SequentialAllocationEnv, BatchedSequentialAllocation)):
            raise ValueError("game must be a SequentialAllocationEnv, a BatchedSequentialAllocation, a dict of "
                             f"their keyword arguments or a GameSpec, got {type(game).__name__}")
        act = game.action_space(game.possible_agents[0]) if callable(game.action_space) else game.action_space
        obs = (game.observation_space(game.possible_agents[0]) if callable(game.observation_space)
               else game.observation_space)
        c = game.config
        dist = c.type_distribution
        support = ReportSpace(float(dist.value_low), float(dist.value_high), float(dist.demand_high))
        return cls(tuple(game.possible_agents), c.n_resources, c.horizon, c.report_mode,
                   dict(game.observation_layout), dict(game.action_layout), act.low.astype(np.float64),
                   act.high.astype(np.float64), obs.high.astype(np.float64), support)

    def truth(self, observation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """True ``(values, demands)`` of the coming round, ``(..., M)`` each, read from observations."""
        obs = np.asarray(observation, dtype=np.float64)
        return obs[..., self.observation_layout["values"]], obs[..., self.observation_layout["demands"]]

    def encode(self, observation: np.ndarray, values: np.ndarray, demands: np.ndarray) -> np.ndarray:
        """Actions ``(..., act_dim)`` that report ``values, demands (..., M)``, clipped to the action box.

        Relative mode: ``log(report / truth)`` (0 where the truth is 0: zero demands are always
        reported as 0 there); absolute mode: the reports themselves.
        """
        if self.report_mode == "relative":
            true_v, true_x = self.truth(observation)
            with np.errstate(divide="ignore", invalid="ignore"):
                parts = [np.where(t > 0, np.log(np.maximum(r, LOG_FLOOR) / np.where(t > 0, t, 1.0)), 0.0)
                         for r, t in ((values, true_v), (demands, true_x))]
        else:
            parts = [values, demands]
        action = np.empty(np.broadcast_shapes(parts[0].shape, parts[1].shape)[:-1] + self.action_low.shape)
        action[..., self.action_layout["values"]] = parts[0]
        action[..., self.action_layout["demands"]] = parts[1]
        return np.clip(action, self.action_low, self.action_high)

    def normalize_observation(self, observation: np.ndarray) -> np.ndarray:
        """Observation(s) scaled into ``[0, 1]`` by the observation box (float32)."""
        return (np.asarray(observation, dtype=np.float64) / self.observation_high).astype(np.float32)

    def action_from_unit(self, unit_action: np.ndarray) -> np.ndarray:
        """Map ``[-1, 1]`` actions affinely onto the game's action box (0 maps to its centre: the
        truth in relative mode); values outside ``[-1, 1]`` are clipped."""
        u = np.clip(np.asarray(unit_action, dtype=np.float64), -1.0, 1.0)
        return self.action_low + (u + 1.0) * 0.5 * (self.action_high - self.action_low)


def game_kwargs(game) -> dict:
    """Keyword arguments that rebuild ``game`` (an env of either form, or a dict of its arguments)
    as a ``SequentialAllocationEnv`` or ``BatchedSequentialAllocation``."""
    if game is None:
        return {}
    if isinstance(game, Mapping):
        return dict(game)
    game = getattr(game, "game", game)
    if not isinstance(game, (SequentialAllocationEnv, BatchedSequentialAllocation)):
        raise ValueError(f"game must be an allocation game or a dict of its arguments, got {type(game).__name__}")
    c = game.config
    return dict(n_agents=c.n_agents, n_resources=c.n_resources, horizon=c.horizon, meta=c.meta,
                one_shot=c.one_shot, budget=np.array(c.budget), type_distribution=c.type_distribution,
                report_mode=c.report_mode, report_bound=c.report_bound, observe_others=c.observe_others,
                strict=c.strict, beta_schedule=c.beta_schedule, max_cycles=game.max_cycles)


def bind(policy: Policy, game) -> Policy:
    """``policy`` bound to ``game`` (a copy) if it needs the game's layouts, else ``policy`` itself."""
    if not (callable(getattr(policy, "act", None)) and callable(getattr(policy, "reset", None))):
        raise ValueError(f"a policy needs act(observation, agent) and reset(seed) methods, got {type(policy).__name__}")
    return policy.bind(GameSpec.of(game)) if callable(getattr(policy, "bind", None)) else policy


class ScriptedPolicy:
    """Base of policies that compute their action from the observation and the game's spec."""

    game: GameSpec | None = None

    def bind(self, game) -> ScriptedPolicy:
        """A copy of this policy bound to ``game`` (any argument of :meth:`GameSpec.of`)."""
        bound = copy.copy(self)
        bound.game = GameSpec.of(game)
        return bound

    def reset(self, seed: int | None = None) -> None:
        """Scripted policies are deterministic and stateless."""

    def _spec(self) -> GameSpec:
        if self.game is None:
            raise ValueError(f"{type(self).__name__} is not bound to a game: use bind(policy, env) or policy.bind(env)")
        return self.game


class TruthfulPolicy(ScriptedPolicy):
    """Reports the true type: the zero action in relative mode, the observed truth in absolute mode."""

    def act(self, observation: np.ndarray, agent: str) -> np.ndarray:
        spec = self._spec()
        if spec.report_mode == "relative":
            return np.zeros(np.shape(observation)[:-1] + spec.action_low.shape)
        return spec.encode(observation, *spec.truth(observation))

    def __repr__(self) -> str:
        return "TruthfulPolicy()"


class ScalingPolicy(ScriptedPolicy):
    """Reports ``clip(v * value_factors)`` and ``clip(x^t * demand_factors)`` every round.

    Factors are ``(M,)`` (or scalars), or ``(B, M)`` for one row per batch instance; reports
    are clipped to ``space`` (default: the game's type support), as
    :class:`~mechzoo.agents.sequential_oracles.ScalingMisreports` does. Presets:
    :meth:`inflate` and :meth:`shade`.
    """

    def __init__(self, value_factors=1.0, demand_factors=1.0, space: ReportSpace | None = None):
        self.value_factors = np.asarray(value_factors, dtype=np.float64)
        self.demand_factors = np.asarray(demand_factors, dtype=np.float64)
        for name, f in (("value_factors", self.value_factors), ("demand_factors", self.demand_factors)):
            if f.ndim > 2 or not np.all(np.isfinite(f)) or np.any(f < 0):
                raise ValueError(f"{name} must be finite, >= 0, a scalar, (M,) or (B, M); got {f!r}")
        self.space = space

    @classmethod
    def inflate(cls, factor: float = 2.0, fields: str = "demands") -> ScalingPolicy:
        """Over-report ``fields`` (``"values"``, ``"demands"`` or ``"both"``) by ``factor``."""
        if fields not in ("values", "demands", "both"):
            raise ValueError(f"fields must be 'values', 'demands' or 'both', got {fields!r}")
        return cls(factor if fields != "demands" else 1.0, factor if fields != "values" else 1.0)

    @classmethod
    def shade(cls, factor: float = 0.5, fields: str = "values") -> ScalingPolicy:
        """Under-report ``fields`` by ``factor`` (< 1)."""
        return cls.inflate(factor, fields)

    def act(self, observation: np.ndarray, agent: str) -> np.ndarray:
        spec = self._spec()
        true_v, true_x = spec.truth(observation)
        values, demands = (self.space or spec.support).clip(true_v * self.value_factors, true_x * self.demand_factors)
        return spec.encode(observation, values, demands)

    def __repr__(self) -> str:
        return f"ScalingPolicy(values x {self.value_factors.tolist()}, demands x {self.demand_factors.tolist()})"


class SB3Policy(ScriptedPolicy):
    """A trained Stable-Baselines3 model as a policy.

    ``normalized=True`` (models trained in :class:`~mechzoo.agents.best_response_env.BestResponseEnv`):
    the model sees observations scaled into ``[0, 1]`` and acts in ``[-1, 1]``, mapped onto the
    game's action box (:meth:`GameSpec.action_from_unit`). ``deterministic=True`` plays the
    mean action; otherwise Gaussian actions are sampled with the policy's own Generator.
    """

    def __init__(self, model, normalized: bool = True, deterministic: bool = True, seed: int | None = None):
        self.model, self.normalized, self.deterministic = model, normalized, deterministic
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def act(self, observation: np.ndarray, agent: str) -> np.ndarray:
        import torch

        spec = self._spec()
        obs = np.asarray(observation)
        x = spec.normalize_observation(obs) if self.normalized else obs.astype(np.float32)
        policy = self.model.policy
        with torch.no_grad():
            dist = policy.get_distribution(torch.as_tensor(x.reshape(-1, x.shape[-1]), device=policy.device))
            mean = dist.distribution.mean.cpu().numpy().astype(np.float64)
            if not self.deterministic:
                std = dist.distribution.stddev.cpu().numpy().astype(np.float64)
                mean = mean + std * self.rng.standard_normal(mean.shape)
        mean = mean.reshape(obs.shape[:-1] + mean.shape[-1:])
        if self.normalized:
            return spec.action_from_unit(mean)
        return np.clip(mean, spec.action_low, spec.action_high)

    def __repr__(self) -> str:
        return f"SB3Policy({type(self.model).__name__}, deterministic={self.deterministic})"


# ---------------------------------------------------------------------- rollouts
@dataclass(frozen=True)
class RolloutResult:
    """Totals over each episode. Shapes: ``utility, truthful_utility, report_distance (E, N)``.

    ``utility`` is each agent's total true utility, ``truthful_utility`` the same in the truthful
    shadow run (everyone truthful on the same draws); ``report_distance`` the mean of
    ``|log report - log truth|`` over the agent's value reports (round 0) and its demand reports
    of positive true demand (reports below 1e-12 count as 1e-12).
    """

    utility: np.ndarray
    truthful_utility: np.ndarray
    report_distance: np.ndarray

    @property
    def gain(self) -> np.ndarray:
        """``utility - truthful_utility`` ``(E, N)``."""
        return self.utility - self.truthful_utility


def profile_for(game, policies: Mapping[str, Policy] | Policy) -> list[Policy]:
    """One bound policy per agent of ``game`` (in agent order) from a dict or a single policy."""
    agents = GameSpec.of(game).agents
    if not isinstance(policies, Mapping):
        policies = dict.fromkeys(agents, policies)
    missing = [a for a in agents if a not in policies]
    unknown = [a for a in policies if a not in agents]
    if missing or unknown:
        raise ValueError(f"policies must cover exactly the agents {list(agents)}; missing {missing}, unknown {unknown}")
    return [bind(policies[a], game) for a in agents]


def log_distance(report: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum over the last axis of ``|log report - log truth|`` where truth > 0, and the count."""
    positive = truth > 0
    with np.errstate(divide="ignore"):
        d = np.abs(np.log(np.maximum(report, LOG_FLOOR)) - np.log(np.where(positive, truth, 1.0)))
    return np.where(positive, d, 0.0).sum(axis=-1), positive.sum(axis=-1)


def rollout(game, policies: Mapping[str, Policy] | Policy, episodes: int = 1, seed: int | None = None,
            options: dict | None = None) -> RolloutResult:
    """Play ``policies`` (``{agent: policy}`` or one policy for all) in ``game``.

    ``game``: a ``SequentialAllocationEnv`` (``episodes`` episodes, one env step at a time,
    reset with seeds ``seed, seed + 1, ...``) or a ``BatchedSequentialAllocation`` (one episode of
    all ``n_envs`` instances at once; ``episodes`` must be 1; ``options`` go to its ``reset``, e.g.
    given types). Every policy is ``reset(seed + k)`` at the start of episode k (agent k's
    offset added). Returns :class:`RolloutResult` with ``E = episodes`` or ``n_envs`` rows.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ValueError(f"episodes must be an integer >= 1, got {episodes!r}")
    profile = profile_for(game, policies)
    if isinstance(game, BatchedSequentialAllocation):
        if episodes != 1:
            raise ValueError("a batched game plays one episode of all its instances: use episodes=1 and n_envs")
        return _rollout_batched(game, profile, seed, options)
    if not isinstance(game, SequentialAllocationEnv):
        raise ValueError(f"game must be a SequentialAllocationEnv or BatchedSequentialAllocation, got {type(game).__name__}")
    results = [_rollout_batched(SingleAsBatch(game), profile, None if seed is None else seed + k, options)
               for k in range(episodes)]
    return RolloutResult(*(np.concatenate([getattr(r, f) for r in results]) for f in
                           ("utility", "truthful_utility", "report_distance")))


def reset_policies(profile: list[Policy], seed: int | None) -> None:
    """Reset every policy, agent i with seed ``seed + 1000 i`` (or ``None``)."""
    for i, policy in enumerate(profile):
        policy.reset(None if seed is None else seed + 1000 * i)


def _rollout_batched(game, profile: list[Policy], seed: int | None, options: dict | None) -> RolloutResult:
    agents = game.possible_agents
    obs, _ = game.reset(seed=seed, options=options)
    reset_policies(profile, seed)
    true_v = np.array(game.true_values)                    # (B, N, M)
    dist_sum, dist_count = np.zeros(true_v.shape[:2]), np.zeros(true_v.shape[:2], dtype=np.int64)
    done = False
    while not done:
        actions = np.stack([p.act(obs[:, i], a) for i, (p, a) in enumerate(zip(profile, agents))], axis=1)
        obs, _, terminated, truncated, infos = game.step(actions)
        if infos["round"] == 0:
            s, c = log_distance(infos["reported_values"], true_v)
            dist_sum, dist_count = dist_sum + s, dist_count + c
        s, c = log_distance(infos["reported_demands"], infos["true_demands"])
        dist_sum, dist_count = dist_sum + s, dist_count + c
        done = bool(np.all(terminated | truncated))
    return RolloutResult(infos["cumulative_utility"].copy(), infos["cumulative_truthful_utility"].copy(),
                         dist_sum / np.maximum(dist_count, 1))


class SingleAsBatch:
    """A ``SequentialAllocationEnv`` seen through the batched env's array interface (one instance):
    ``reset(seed, options)``, ``step(actions (1, N, act_dim))`` and ``true_values`` as in
    ``BatchedSequentialAllocation``, stepping the PettingZoo env itself."""

    def __init__(self, env: SequentialAllocationEnv):
        self.env = env
        self.possible_agents = env.possible_agents

    @property
    def true_values(self) -> np.ndarray:
        return self.env.true_values[None]

    @property
    def true_demands(self) -> np.ndarray:
        return self.env.true_demands[None]

    def reset(self, seed=None, options=None):
        if options is not None:
            options = {k: np.asarray(v)[0] for k, v in options.items()}
        obs, infos = self.env.reset(seed=seed, options=options)
        return self._stack(obs), infos

    def _stack(self, per_agent: dict) -> np.ndarray:
        return np.stack([np.asarray(per_agent[a]) for a in self.possible_agents])[None]

    def step(self, actions: np.ndarray):
        obs, rewards, terms, truncs, infos = self.env.step({a: actions[0, i] for i, a in enumerate(self.possible_agents)})
        first = infos[self.possible_agents[0]]
        arrays = {k: (v if k == "round" else self._stack({a: infos[a][k] for a in self.possible_agents}))
                  for k, v in first.items()}
        return (self._stack(obs), self._stack(rewards), np.array([terms[self.possible_agents[0]]]),
                np.array([truncs[self.possible_agents[0]]]), arrays)
