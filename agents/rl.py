"""RL best response: SB3 PPO trained against frozen opponents, evaluated on type profiles.

:class:`PPOBestResponse` trains one PPO policy per deviating agent in
:class:`~mechzoo.agents.best_response_env.BestResponseVecEnv` (the batched game, reward
``"gain"`` over the truthful shadow run, normalised observations and ``[-1, 1]`` actions) and
measures the learned policy's gain over truthful play of the same agent, the opponents
unchanged, on ``P`` profiles. Its label names its budget, e.g.
``"ppo(total_timesteps=50000, seed=0, train_on=distribution)"``.

``train_on``:

* ``"distribution"``: episodes draw fresh types from the game's distribution; the policy is an
  *interim* best response — at each round it knows only its own type and what it observes.
* ``"profiles"``: episodes replay the evaluation profiles (instance k plays profile k), so the
  policy can tailor its reports to each profile, like the search oracles' *ex-post* best
  responses (``full_best_response`` picks the best scaling per profile knowing every agent's
  whole type sequence). Compare with those oracles in this mode.

``observe_types=True`` gives the learner the whole realised type profile in its observation
(:class:`~mechzoo.agents.best_response_env.BestResponseVecEnv`), the information the search
oracles use: an *ex-post* best response. Without it (the default), the policy sees only its own
type and the game so far, and cannot find misreports that depend on the others' types. A
full-information policy needs the profile to act, so it is evaluated in the learner's view of
the game (deterministic actions) rather than through :func:`~mechzoo.agents.policies.rollout`;
so is a policy restricted to some report ``fields`` (``"values"``: demands are reported
truthfully, the search oracles' ``ReportSpace(fields="values")``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..envs import BatchedSequentialAllocation
from .best_response_env import BestResponseVecEnv
from .nash_conv import profile_types
from .policies import GameSpec, Policy, SB3Policy, TruthfulPolicy, game_kwargs, profile_for, rollout

TRAIN_ON = ("distribution", "profiles")
PPO_DEFAULTS = dict(batch_size=256, n_epochs=10, gamma=1.0, gae_lambda=0.95, learning_rate=3e-4,
                    policy_kwargs=dict(log_std_init=-1.0, net_arch=[64, 64]))


@dataclass(frozen=True)
class RLBestResponse:
    """Shapes: ``gain, truthful_utility, deviation_utility (P, N)``.

    ``gain = deviation_utility - truthful_utility``: the learned policy's total true utility minus
    the same agent's truthful play, opponents unchanged (0 for agents not trained). It can be
    negative where the policy does worse than the truth. ``policies`` holds the trained policies,
    ``train_seconds`` the wall time of training; ``oracle`` is the label.
    """

    gain: np.ndarray
    truthful_utility: np.ndarray
    deviation_utility: np.ndarray
    policies: dict = field(repr=False)
    train_seconds: float
    oracle: str


class PPOBestResponse:
    """A best-response oracle that trains SB3 PPO (``device="cpu"``) against frozen opponents.

    ``total_timesteps`` agent-rounds of training per deviating agent, ``n_envs`` batched
    instances (with ``train_on="profiles"``: one per profile), ``ppo_kwargs`` override
    :data:`PPO_DEFAULTS` (γ = 1: the episode is the horizon; ``log_std_init = -1`` starts near the
    truth); ``n_steps`` defaults to the smallest multiple of the horizon with at least 2048
    samples per update (fewer when ``total_timesteps`` is smaller).
    """

    def __init__(self, total_timesteps: int = 50_000, seed: int = 0, n_envs: int = 16,
                 train_on: str = "distribution", ppo_kwargs: dict | None = None, progress: bool = False,
                 observe_types: bool = False, fields: str = "both"):
        if isinstance(total_timesteps, bool) or not isinstance(total_timesteps, (int, np.integer)) or total_timesteps < 1:
            raise ValueError(f"total_timesteps must be an integer >= 1, got {total_timesteps!r}")
        if train_on not in TRAIN_ON:
            raise ValueError(f"train_on must be one of {TRAIN_ON}, got {train_on!r}")
        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        self.total_timesteps, self.seed, self.n_envs, self.train_on = int(total_timesteps), int(seed), n_envs, train_on
        self.ppo_kwargs, self.progress = dict(ppo_kwargs or {}), progress
        self.observe_types, self.fields = bool(observe_types), fields

    @property
    def label(self) -> str:
        info = (", observe_types=True" if self.observe_types else "") + (f", fields={self.fields}" if self.fields != "both" else "")
        return f"ppo(total_timesteps={self.total_timesteps}, seed={self.seed}, train_on={self.train_on}{info})"

    def make_model(self, venv: BestResponseVecEnv):
        """A fresh PPO model on ``venv`` with this oracle's hyperparameters."""
        from stable_baselines3 import PPO

        horizon = GameSpec.of(venv.game).horizon
        kwargs = {**PPO_DEFAULTS, **self.ppo_kwargs}
        per_update = min(-(-2048 // (horizon * venv.num_envs)), -(-self.total_timesteps // (horizon * venv.num_envs)))
        kwargs.setdefault("n_steps", horizon * max(1, per_update))
        kwargs["batch_size"] = min(kwargs["batch_size"], kwargs["n_steps"] * venv.num_envs)
        return PPO("MlpPolicy", venv, seed=self.seed, device="cpu", verbose=0, **kwargs)

    def train(self, game, learner: str, opponents: Mapping[str, Policy] | Policy | None = None,
              types: tuple[np.ndarray, np.ndarray] | None = None, model=None) -> SB3Policy:
        """Train (or continue training ``model``) ``learner``'s policy against ``opponents``.

        With ``train_on="profiles"`` the episodes replay ``types``; otherwise they are drawn.
        """
        if self.train_on == "profiles" and types is None:
            raise ValueError("train_on='profiles' needs the profiles: pass types=(values, demands)")
        venv = BestResponseVecEnv(game_kwargs(game), n_envs=self.n_envs, learner=learner, opponents=opponents,
                                  reward="gain", types=types if self.train_on == "profiles" else None,
                                  observe_types=self.observe_types, fields=self.fields)
        if model is None:
            model = self.make_model(venv)
        else:
            model.set_env(venv)
        model.learn(self.total_timesteps, progress_bar=self.progress, reset_num_timesteps=False)
        return SB3Policy(model)

    def best_response(self, game, opponents: Mapping[str, Policy] | Policy | None = None, profiles: int = 200,
                      seed: int = 0, types: tuple[np.ndarray, np.ndarray] | None = None,
                      agents=None) -> RLBestResponse:
        """Train every agent's (or the listed ``agents``' indices) best response and evaluate it.

        Profiles: ``types = (values (P, N, M), demands (P, T, N, M))`` or ``profiles`` draws of
        the game's distribution with ``seed`` (as :func:`~mechzoo.agents.nash_conv.profile_types`).
        ``opponents``: one policy for all or ``{agent: policy}`` for every agent (default truthful).
        """
        kwargs = game_kwargs(game)
        if types is None:
            types = profile_types(kwargs, profiles, seed)
        values, demands = (np.asarray(t, dtype=np.float64) for t in types)
        benv = BatchedSequentialAllocation(len(values), **kwargs)
        spec = GameSpec.of(benv)
        profile = profile_for(benv, opponents if opponents is not None else TruthfulPolicy())
        n = len(spec.agents)
        options = {"values": values, "demands": demands}
        gain, truthful, deviation = np.zeros((len(values), n)), np.zeros((len(values), n)), np.zeros((len(values), n))
        policies, seconds = {}, 0.0
        for i in range(n) if agents is None else agents:
            learner = spec.agents[i]
            others = {a: p for k, (a, p) in enumerate(zip(spec.agents, profile)) if k != i}
            start = time.perf_counter()
            policies[learner] = self.train(kwargs, learner, others, types=(values, demands))
            seconds += time.perf_counter() - start
            base = rollout(benv, {**others, learner: TruthfulPolicy()}, seed=seed, options=options).utility[:, i]
            if self.observe_types or self.fields != "both":  # the policy needs its view of the game
                dev = self._evaluate_in_view(policies[learner], kwargs, learner, others, (values, demands), seed)
            else:
                dev = rollout(benv, {**others, learner: policies[learner]}, seed=seed, options=options).utility[:, i]
            truthful[:, i], deviation[:, i], gain[:, i] = base, dev, dev - base
        return RLBestResponse(gain, truthful, deviation, policies, seconds, self.label)

    def _evaluate_in_view(self, policy: SB3Policy, game: dict, learner: str, others, types, seed: int) -> np.ndarray:
        """The learner's total true utility ``(P,)`` on the profiles ``types``, playing the model's
        deterministic actions in the view it was trained in (full information, restricted fields;
        opponents' policies seeded by ``seed``)."""
        venv = BestResponseVecEnv(game, learner=learner, opponents=others, reward="utility", types=types,
                                  observe_types=self.observe_types, fields=self.fields)
        venv.seed(seed)
        obs, total = venv.reset(), np.zeros(len(types[0]))
        for _ in range(GameSpec.of(venv.game).horizon):
            action, _ = policy.model.predict(obs, deterministic=True)
            obs, reward, _, _ = venv.step(action)
            total += reward
        return total
