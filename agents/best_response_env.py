"""The single-agent view of a game: one agent learns, the others follow fixed policies.

``BestResponseEnv(game, learner="agent_0", opponents=TruthfulPolicy(), reward="utility")`` is a
plain ``gymnasium.Env`` over a :class:`~mechzoo.envs.SequentialAllocationEnv` (or the one-shot
game), so any single-agent learner (SB3, RLlib, ...) can train a best response against frozen
opponents. Spaces (shaping choices, ``normalized=True``, the default):

* observation: the learner's flat game observation divided by the game's observation bound,
  so every entry lies in ``[0, 1]`` (float32 Box of the same size);
* action: ``[-1, 1]^{2M}`` (float32), mapped affinely onto the game's action box; in the
  default relative report mode 0 is the truthful report and ±1 are the multipliers
  ``exp(±report_bound)``. With ``normalized=False`` both are the game's own spaces.

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

from ..envs import SequentialAllocationEnv
from .policies import GameSpec, Policy, TruthfulPolicy, profile_for, reset_policies

REWARDS = ("utility", "gain")


def opponent_profile(game, learner: str, opponents: Mapping[str, Policy] | Policy | None) -> dict[str, Policy]:
    """``{agent: policy}`` for every agent but ``learner`` (one policy for all, or a dict of them)."""
    agents = GameSpec.of(game).agents
    if learner not in agents:
        raise ValueError(f"learner must be one of the agents {list(agents)}, got {learner!r}")
    if opponents is None:
        opponents = TruthfulPolicy()
    if not isinstance(opponents, Mapping):
        opponents = {a: opponents for a in agents if a != learner}
    if learner in opponents:
        raise ValueError(f"opponents must not include the learner {learner!r}")
    return dict(opponents)


class BestResponseEnv(gym.Env):
    """One agent of an allocation game against fixed opponents (see the module docstring).

    ``game``: a ``SequentialAllocationEnv`` (or ``OneShotAllocationEnv``) or a dict of its
    keyword arguments (``None``: the default game). ``opponents``: one policy for all other
    agents or a dict ``{agent: policy}`` covering them.
    """

    def __init__(self, game: SequentialAllocationEnv | Mapping | None = None, learner: str = "agent_0",
                 opponents: Mapping[str, Policy] | Policy | None = None, reward: str = "utility",
                 normalized: bool = True, types: tuple[np.ndarray, np.ndarray] | None = None):
        if game is None or isinstance(game, Mapping):
            game = SequentialAllocationEnv(**(game or {}))
        if not isinstance(game, SequentialAllocationEnv):
            raise ValueError(f"game must be a SequentialAllocationEnv or a dict of its arguments, got {type(game).__name__}")
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
        self.game, self.learner, self.reward, self.normalized = game, learner, reward, bool(normalized)
        self.spec_game = GameSpec.of(game)
        others = opponent_profile(game, learner, opponents)
        # the learner's slot holds a placeholder so that profile_for checks the others' coverage
        profile = profile_for(game, {**others, learner: TruthfulPolicy()})
        self.opponents = {a: p for a, p in zip(self.spec_game.agents, profile) if a != learner}
        self._options = None if types is None else {"values": np.asarray(types[0]), "demands": np.asarray(types[1])}
        act_dim, obs_dim = self.spec_game.action_low.size, self.spec_game.observation_high.size
        if self.normalized:
            self.observation_space = spaces.Box(0.0, 1.0, (obs_dim,), dtype=np.float32)
            self.action_space = spaces.Box(-1.0, 1.0, (act_dim,), dtype=np.float32)
        else:
            self.observation_space = game.observation_space(learner)
            self.action_space = game.action_space(learner)
        self._obs: dict | None = None

    def _observe(self, obs: dict) -> np.ndarray:
        self._obs = obs
        own = obs[self.learner]
        return self.spec_game.normalize_observation(own) if self.normalized else np.asarray(own, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        game_seed, policy_seed = (int(s) for s in self.np_random.integers(0, 2**31 - 1, size=2))
        obs, infos = self.game.reset(seed=game_seed, options=options if options is not None else self._options)
        reset_policies(list(self.opponents.values()), policy_seed)
        return self._observe(obs), infos[self.learner]

    def step(self, action):
        if self._obs is None:
            raise ValueError("step() called before reset()")
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"{self.learner}: action has shape {action.shape}, expected {self.action_space.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"{self.learner}: action must be finite, got {action.tolist()}")
        actions = {a: p.act(self._obs[a], a) for a, p in self.opponents.items()}
        actions[self.learner] = self.spec_game.action_from_unit(action) if self.normalized else action
        obs, rewards, terms, truncs, infos = self.game.step(actions)
        info = infos[self.learner]
        reward = rewards[self.learner] if self.reward == "utility" else info["gain"]
        return self._observe(obs), float(reward), bool(terms[self.learner]), bool(truncs[self.learner]), info

    def close(self):
        self.game.close()
