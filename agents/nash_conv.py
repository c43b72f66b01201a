"""NashConv of a policy profile in an allocation game (OpenSpiel's definition, general-sum).

``NashConv(π) = Σ_i [ max_{π'_i} U_i(π'_i, π_-i) − U_i(π) ]``: for every agent, the gain of its
best response with the others fixed, summed over agents (never divided by N). Values are
total true utilities over the episode, estimated on ``P`` type profiles.

Best responses come from oracles, each a lower bound:

* **search** (default): scripted deviations — the truth scaled by constant per-resource
  factors (:class:`~mechzoo.agents.sequential_oracles.ScalingMisreports`), each simulated in
  the batched game over all ``P`` profiles at once against the others' policies (which react
  to the state as they would in play). The best deviation is picked **per profile** (ex post,
  as in the papers' exploitability), and keeping the profile's own play is always allowed, so
  search gains are ``>= 0``. With all agents truthful this is exactly the full exploitability
  of ``full_best_response`` on the same draws.
* **PPO** (optional, :class:`~mechzoo.agents.rl.PPOBestResponse`): a policy trained against the
  frozen others, evaluated on the same profiles. Its per-profile gain can be negative; with
  both oracles the per-profile maximum is taken.

Every run of a candidate resets the game with the same seed (the same types) and every policy
with the same seed (``seed + 1000 i`` for agent i), so deviations are compared under common
random numbers; a stochastic policy that draws its randomness in the same order in every run
(e.g. :class:`~mechzoo.agents.hedge.HedgePolicy`) sees the same draws across candidates.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from tqdm import tqdm

from ..envs import BatchedSequentialAllocation
from ..metrics import NashConvEstimate, summarize_nash_conv
from .policies import GameSpec, Policy, ScalingPolicy, game_kwargs, profile_for, rollout
from .sequential_oracles import ScalingMisreports


def profile_types(game, profiles: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``P = profiles`` type profiles a batched game reset with ``seed`` plays:
    ``values (P, N, M)``, ``demands (P, T, N, M)`` (instance k is drawn with seed ``seed + k``)."""
    benv = BatchedSequentialAllocation(profiles, **game_kwargs(game))
    benv.reset(seed=seed)
    return np.array(benv.true_values), np.array(benv.true_demands)


def nash_conv(game, policies: Mapping[str, Policy] | Policy, profiles: int = 200, seed: int = 0,
              misreports: ScalingMisreports | None = None, rl_oracle=None, search: bool = True,
              types: tuple[np.ndarray, np.ndarray] | None = None, agents=None,
              progress: bool = True) -> NashConvEstimate:
    """NashConv of ``policies`` (``{agent: policy}`` or one for all) in ``game`` (env or kwargs dict).

    Profiles: ``profiles`` draws of the game's type distribution with ``seed`` (see
    :func:`profile_types`), or the given ``types = (values (P, N, M), demands (P, T, N, M))``.
    ``misreports`` is the search grid (default ``ScalingMisreports()`` clipped to the game's type
    support); ``search=False`` skips it. ``rl_oracle``, an object with
    ``best_response(game, opponents, types=..., seed=..., agents=[i])`` returning the deviator's
    ``deviation_utility (P, N)`` and a ``label`` (:class:`~mechzoo.agents.rl.PPOBestResponse`,
    in any of its views), adds a learned best response. ``agents`` restricts the deviators
    (indices; others get gain 0).
    """
    if not search and rl_oracle is None:
        raise ValueError("nash_conv needs an oracle: search=True and/or an rl_oracle")
    kwargs = game_kwargs(game)
    if types is None:
        if isinstance(profiles, bool) or not isinstance(profiles, (int, np.integer)) or profiles < 1:
            raise ValueError(f"profiles must be an integer >= 1, got {profiles!r}")
        types = profile_types(kwargs, profiles, seed)
    values, demands = (np.asarray(t, dtype=np.float64) for t in types)
    if values.ndim != 3:
        raise ValueError(f"types must be (values (P, N, M), demands (P, T, N, M)), got values {values.shape}")
    profiles = values.shape[0]
    options = {"values": values, "demands": demands}
    benv = BatchedSequentialAllocation(profiles, **kwargs)
    spec = GameSpec.of(benv)
    profile = profile_for(benv, policies)
    n = len(spec.agents)
    deviators = range(n) if agents is None else list(agents)
    if any(not 0 <= i < n for i in deviators):
        raise ValueError(f"agents must be indices in [0, {n}), got {list(deviators)}")

    def value_of(deviator: int | None, policy: Policy | None) -> np.ndarray:
        played = list(profile)
        if deviator is not None:
            played[deviator] = policy
        return rollout(benv, dict(zip(spec.agents, played)), seed=seed, options=options).utility  # (P, N)

    on_policy = value_of(None, None)
    gains = np.zeros((profiles, n))
    labels = []
    if search:
        misreports = misreports or ScalingMisreports(space=spec.support)
        fv, fx = misreports.factors(spec.n_resources)
        bar = tqdm(total=len(deviators) * len(fv), desc="NashConv search", disable=not progress, leave=False)
        for i in deviators:
            best = on_policy[:, i].copy()
            for c in range(len(fv)):
                deviation = ScalingPolicy(fv[c], fx[c], space=misreports.space)
                best = np.maximum(best, value_of(i, deviation)[:, i])
                bar.update()
            gains[:, i] = best - on_policy[:, i]
        bar.close()
        labels.append(f"search over {len(fv)} {misreports.label}")
    if rl_oracle is not None:
        played = dict(zip(spec.agents, profile))
        for i in deviators:
            learned = rl_oracle.best_response(kwargs, played, types=(values, demands), seed=seed, agents=[i])
            rl_gain = learned.deviation_utility[:, i] - on_policy[:, i]
            gains[:, i] = np.maximum(gains[:, i], rl_gain) if search else rl_gain
        labels.append(rl_oracle.label)
    label = labels[0] if len(labels) == 1 else f"max({', '.join(labels)})"
    return summarize_nash_conv(gains, on_policy, label)
