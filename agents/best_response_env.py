"""The single-agent view of a game: one agent learns, the others follow fixed policies.

``BestResponseEnv(game, learner="agent_0", opponents=TruthfulPolicy(), reward="utility")`` is a
plain ``gymnasium.Env`` over a :class:`~mechzoo.envs.SequentialAllocationEnv` (or the one-shot
game), so any single-agent learner (SB3, RLlib, ...) can train a best response against frozen
opponents. :class:`BestResponseVecEnv` is the same view over the batched game as an SB3
``VecEnv`` (``n_envs`` instances stepped in one batched mechanism call; much faster to train).

Spaces (shaping choices, ``normalized=True``, the default):

* observation: the learner's flat game observation divided by the game's observation bound,
  so every entry lies in ``[0, 1]`` (float32 Box of the same size);
* action: ``[-1, 1]^{2M}`` (float32), mapped affinely onto the game's action box; in the
  default relative report mode 0 is the truthful report and ±1 are the multipliers
  ``exp(±report_bound)``. With ``normalized=False`` both are the game's own spaces.

Full information (``observe_types=True``): the observation is followed by the whole realised type
profile — every agent's values ``(N, M)`` and demands for every round ``(T, N, M)``, flattened
and divided by the type support's bounds. This is the information of an *ex-post* best
response (what the search oracles use when they pick the best misreport per profile); without
it the learner is an *interim* best response that knows only its own type and the game so far.

Restricted deviations (``fields="values"`` or ``"demands"``, default ``"both"``): the learner's
action still has the game's shape, but the other field is replaced by the truthful report, as
the search oracles' ``ReportSpace(fields=...)`` restricts their misreports. A best response
over value reports only (the round-0 value report carries the whole gain in PF-based games)
is much easier to learn: noise in demand reports wastes budget in every round.

Rewards: ``"utility"`` — the learner's true utility of the round; ``"gain"`` — that utility
minus its utility in the truthful shadow run (everyone truthful on the same draws). The shadow
term does not depend on the learner's actions, so both rewards have the same optimal policies;
``"gain"`` removes most of the variance that comes from the types.

Episode end: the horizon is part of the game, so the last round gives ``terminated=True``,
``truncated=False`` (nothing to bootstrap after it); only a game built with ``max_cycles < T``
gives ``truncated=True``. ``info`` is the learner's ``infos`` entry of the game.

Seeding: ``reset(seed=s)`` seeds the env's generator, from which each episode's game seed and
the opponents' seeds are drawn; the same seed gives the same trajectory for the same actions.
``reset(options={"values": (N, M), "demands": (T, N, M)})`` plays given types, and
``types=(values, demands)`` at construction plays these types in every episode.
"""
from __future__ import annotations

from typing import Mapping

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from ..envs import BatchedSequentialAllocation, SequentialAllocationEnv
from .oracles import FIELDS
from .policies import GameSpec, Policy, SingleAsBatch, TruthfulPolicy, game_kwargs, profile_for, reset_policies

REWARDS = ("utility", "gain")


class LearnerView:
    """The array core of both views: a game in the batched array interface (``B`` instances),
    the learner's index and the opponents' bound policies."""

    def __init__(self, game, learner: str, opponents: Mapping[str, Policy] | Policy | None, reward: str,
                 normalized: bool, observe_types: bool = False, fields: str = "both"):
        self.spec = GameSpec.of(game)
        agents = self.spec.agents
        if learner not in agents:
            raise ValueError(f"learner must be one of the agents {list(agents)}, got {learner!r}")
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
        if opponents is None:
            opponents = TruthfulPolicy()
        if not isinstance(opponents, Mapping):
            opponents = {a: opponents for a in agents if a != learner}
        if learner in opponents:
            raise ValueError(f"opponents must not include the learner {learner!r}")
        # the learner's slot holds a placeholder so that profile_for checks the others' coverage
        self.profile = profile_for(game, {**opponents, learner: TruthfulPolicy()})
        self.index = agents.index(learner)
        self.opponents = [(k, a, p) for k, (a, p) in enumerate(zip(agents, self.profile)) if k != self.index]
        self.learner, self.reward, self.normalized = learner, reward, bool(normalized)
        self.observe_types = bool(observe_types)
        if fields not in FIELDS:
            raise ValueError(f"fields must be one of {FIELDS}, got {fields!r}")
        self.truthful_fields = [self.spec.action_layout[f] for f in ("values", "demands") if fields not in (f, "both")]
        self.batch = game if isinstance(game, BatchedSequentialAllocation) else SingleAsBatch(game)
        self.obs: np.ndarray | None = None

    def _types_dim(self) -> int:
        n, m = len(self.spec.agents), self.spec.n_resources
        return n * m * (1 + self.spec.horizon) if self.observe_types else 0

    def spaces(self, game_observation_space, game_action_space) -> tuple[spaces.Box, spaces.Box]:
        extra = self._types_dim()
        if not self.normalized:
            if not extra:
                return game_observation_space, game_action_space
            high = np.concatenate([game_observation_space.high, np.full(extra, np.float32(1.0))])
            return spaces.Box(np.zeros_like(high), high, dtype=np.float32), game_action_space
        obs_dim, act_dim = self.spec.observation_high.size + extra, self.spec.action_low.size
        return (spaces.Box(0.0, 1.0, (obs_dim,), dtype=np.float32),
                spaces.Box(-1.0, 1.0, (act_dim,), dtype=np.float32))

    def _learner_obs(self, obs: np.ndarray) -> np.ndarray:
        self.obs = obs
        own = obs[:, self.index]
        own = self.spec.normalize_observation(own) if self.normalized else own.astype(np.float32)
        if not self.observe_types:
            return own
        return np.concatenate([own, self.types_obs], axis=1)

    def reset(self, game_seed, policy_seed: int | None, options: dict | None) -> np.ndarray:
        """Start an episode in every instance; returns the learner's observations ``(B, obs_dim)``."""
        obs, _ = self.batch.reset(seed=game_seed, options=options)
        reset_policies([p for _, _, p in self.opponents], policy_seed)
        if self.observe_types:  # the episode's type profile, scaled by the support bounds, fixed until reset
            support, b = self.spec.support, len(obs)
            self.types_obs = np.concatenate([self.batch.true_values.reshape(b, -1) / support.value_high,
                                             self.batch.true_demands.reshape(b, -1) / support.demand_high],
                                            axis=1).astype(np.float32)
        return self._learner_obs(obs)

    def step(self, action: np.ndarray):
        """``action (B, act_dim)`` -> learner's ``(obs, reward (B,), terminated (B,), truncated (B,), infos)``."""
        if self.obs is None:
            raise ValueError("step() called before reset()")
        action = np.asarray(action, dtype=np.float64)
        expected = (self.obs.shape[0], self.spec.action_low.size)
        if action.shape != expected:
            raise ValueError(f"{self.learner}: action has shape {action.shape[1:]}, expected {expected[1:]}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"{self.learner}: action must be finite, got {action.tolist()}")
        actions = np.empty(expected[:1] + (len(self.spec.agents),) + expected[1:])
        for k, agent, policy in self.opponents:
            actions[:, k] = policy.act(self.obs[:, k], agent)
        actions[:, self.index] = self.spec.action_from_unit(action) if self.normalized else action
        if self.truthful_fields:
            own = self.obs[:, self.index]
            truthful = self.spec.encode(own, *self.spec.truth(own))
            for sl in self.truthful_fields:
                actions[:, self.index, sl] = truthful[:, sl]
        obs, rewards, terminated, truncated, infos = self.batch.step(actions)
        own = {key: (v if key == "round" else v[:, self.index]) for key, v in infos.items()}
        reward = rewards[:, self.index] if self.reward == "utility" else own["gain"]
        return self._learner_obs(obs), np.asarray(reward, dtype=np.float64), terminated, truncated, own


class BestResponseEnv(gym.Env):
    """One agent of an allocation game against fixed opponents (see the module docstring).

    ``game``: a ``SequentialAllocationEnv`` (or ``OneShotAllocationEnv``) or a dict of its
    keyword arguments (``None``: the default game). ``opponents``: one policy for all other
    agents or a dict ``{agent: policy}`` covering them.
    """

    def __init__(self, game: SequentialAllocationEnv | Mapping | None = None, learner: str = "agent_0",
                 opponents: Mapping[str, Policy] | Policy | None = None, reward: str = "utility",
                 normalized: bool = True, types: tuple[np.ndarray, np.ndarray] | None = None,
                 observe_types: bool = False, fields: str = "both"):
        if game is None or isinstance(game, Mapping):
            game = SequentialAllocationEnv(**(game or {}))
        if not isinstance(game, SequentialAllocationEnv):
            raise ValueError(f"game must be a SequentialAllocationEnv or a dict of its arguments, got {type(game).__name__}")
        self.game, self.learner = game, learner
        self.view = LearnerView(game, learner, opponents, reward, normalized, observe_types, fields)
        self.observation_space, self.action_space = self.view.spaces(game.observation_space(learner),
                                                                     game.action_space(learner))
        self._types = types

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        game_seed, policy_seed = (int(s) for s in self.np_random.integers(0, 2**31 - 1, size=2))
        if options is None and self._types is not None:
            options = {"values": self._types[0], "demands": self._types[1]}
        if options is not None:
            options = {k: np.asarray(v)[None] for k, v in options.items()}
        obs = self.view.reset(game_seed, policy_seed, options)
        return obs[0], {}

    def step(self, action):
        obs, reward, terminated, truncated, infos = self.view.step(np.asarray(action)[None])
        info = {k: (v if k == "round" else v[0]) for k, v in infos.items()}
        return obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

    def close(self):
        self.game.close()


class BestResponseVecEnv(VecEnv):
    """The learner's view of ``n_envs`` lock-step instances of the batched game, as an SB3 ``VecEnv``.

    Same arguments, spaces, rewards and episode end as :class:`BestResponseEnv`. All instances
    end together; they are then reset at once (SB3's auto-reset), with the last observation in
    ``infos[k]["terminal_observation"]`` and ``"TimeLimit.truncated"`` set on truncation only.
    ``seed(s)`` (SB3 calls it) makes the next reset draw instance k with seed ``s + k``.
    ``types=(values (n_envs, N, M), demands (n_envs, T, N, M))`` plays these profiles, instance k
    the k-th, in every episode (``n_envs`` is then their number).
    """

    def __init__(self, game=None, n_envs: int = 16, learner: str = "agent_0",
                 opponents: Mapping[str, Policy] | Policy | None = None, reward: str = "utility",
                 normalized: bool = True, types: tuple[np.ndarray, np.ndarray] | None = None,
                 observe_types: bool = False, fields: str = "both"):
        self._given_types = None
        if types is not None:
            self._given_types = {"values": np.asarray(types[0]), "demands": np.asarray(types[1])}
            n_envs = len(self._given_types["values"])
        self.game = BatchedSequentialAllocation(n_envs, **game_kwargs(game))
        self.view = LearnerView(self.game, learner, opponents, reward, normalized, observe_types, fields)
        obs_space, act_space = self.view.spaces(self.game.observation_space, self.game.action_space)
        self.render_mode = None
        super().__init__(self.game.n_envs, obs_space, act_space)
        self._rng = np.random.default_rng()
        self._actions: np.ndarray | None = None

    def reset(self):
        seeds = None if self._seeds[0] is None else list(self._seeds)
        if seeds is not None:
            self._rng = np.random.default_rng(seeds[0])
        obs = self.view.reset(seeds, int(self._rng.integers(0, 2**31 - 1)), self._given_types)
        self._reset_seeds()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        obs, reward, terminated, truncated, own = self.view.step(self._actions)
        done = terminated | truncated
        infos = [{"gain": g} for g in own["gain"]]
        if done.all():
            for k, info in enumerate(infos):
                info.update(terminal_observation=obs[k], **{"TimeLimit.truncated": bool(truncated[k] and not terminated[k])})
                info["episode"] = {"r": float(own["cumulative_gain" if self.view.reward == "gain" else
                                                  "cumulative_utility"][k]), "l": int(own["round"]) + 1}
            obs = self.reset()
        return obs, reward.astype(np.float32), done, infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name, indices=None):
        return [getattr(self, attr_name)] * len(list(self._get_indices(indices)))

    def set_attr(self, attr_name, value, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        return [getattr(self, method_name)(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * len(list(self._get_indices(indices)))
