"""Equilibrium dynamics: agents learning at the same time, recorded as a function of training.

* :func:`hedge_dynamics` — every agent a :class:`~mechzoo.agents.hedge.HedgePolicy` over the
  same scaled-truth grid; each iteration draws ``profiles`` type profiles, every agent samples an
  arm per profile, and every agent updates from the mean counterfactual payoff of each arm
  against the others' realised reports (all batched through the mechanism).
* :func:`ppo_dynamics` — each learning agent has its own SB3 PPO model, trained in rounds, in
  turn, through :class:`~mechzoo.agents.best_response_env.BestResponseVecEnv` against the others'
  latest policies (frozen while it trains); agents not listed as learners stay truthful, so
  ``learners=["agent_0"]`` is a PPO best response against truthful opponents and all agents is
  independent PPO.

Recorded per iteration/round (``history.csv``, ``history.png``): the reports' mean distance from
the truth ``mean |log report - log truth|`` (over agents; values and positive demands), the
welfare reached — NSW (product of total utilities) and log-NSW, means over profiles — next to
truthful play's on the same draws, and the NashConv of the current profile (the sum over agents
of the best scaled-truth deviation's gain, per profile, others fixed; 95% CI). For Hedge the
NashConv comes from the same counterfactual payoffs (the others' arms do not react to the
state, so simulating them in the game gives the same utilities); for PPO it is
:func:`~mechzoo.agents.nash_conv.nash_conv` on fixed evaluation profiles.

Both write ``checkpoint.json`` (state and history; PPO also ``<agent>.zip`` models) after every
iteration/round and continue from it with ``resume=True``.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from ..envs import BatchedSequentialAllocation  # noqa: E402
from ..mechanisms.utility import utility  # noqa: E402
from ..metrics import log_nash_social_welfare, nash_social_welfare, summarize_nash_conv  # noqa: E402
from .hedge import HedgePolicy, counterfactual_payoffs  # noqa: E402
from .nash_conv import nash_conv, profile_types  # noqa: E402
from .policies import GameSpec, SB3Policy, TruthfulPolicy, game_kwargs, log_distance, rollout  # noqa: E402
from .rl import PPOBestResponse  # noqa: E402
from .sequential_oracles import ScalingMisreports  # noqa: E402

FIELDS = ["iteration", "timesteps", "report_distance", "nsw", "log_nsw", "truthful_nsw", "truthful_log_nsw",
          "nash_conv", "nash_conv_ci"]


def _welfare_row(utilities: np.ndarray, truthful: np.ndarray) -> dict:
    """Mean NSW of ``(P, N)`` total utilities and of the truthful ones; mean log-NSW over the
    profiles where both are positive (elsewhere the log is -inf)."""
    log_nsw, log_truthful = log_nash_social_welfare(utilities), log_nash_social_welfare(truthful)
    finite = np.isfinite(log_nsw) & np.isfinite(log_truthful)
    mean = (lambda a: float(a[finite].mean())) if finite.any() else (lambda a: float("nan"))  # noqa: E731
    return {"nsw": float(nash_social_welfare(utilities).mean()), "log_nsw": mean(log_nsw),
            "truthful_nsw": float(nash_social_welfare(truthful).mean()), "truthful_log_nsw": mean(log_truthful)}


def _load(out: Path, resume: bool) -> dict | None:
    path = out / "checkpoint.json"
    if resume and path.exists():
        return json.loads(path.read_text())
    return None


def _save(out: Path, state: dict, history: list[dict], title: str) -> None:
    """Checkpoint (written to a temporary file, then renamed), CSV and plot of the history."""
    tmp = out / "checkpoint.json.tmp"
    tmp.write_text(json.dumps({**state, "history": history}))
    tmp.replace(out / "checkpoint.json")
    with open(out / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(history)
    x = [h["timesteps"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(x, [h["report_distance"] for h in history], marker="o")
    axes[0].set_title("mean |log report - log truth|")
    axes[1].plot(x, [h["log_nsw"] for h in history], marker="o", label="learning agents")
    axes[1].plot(x, [h["truthful_log_nsw"] for h in history], ls="--", label="truthful, same draws")
    axes[1].set_title("log Nash social welfare")
    axes[1].legend()
    axes[2].errorbar(x, [h["nash_conv"] for h in history], yerr=[h["nash_conv_ci"] for h in history], marker="o",
                     capsize=3)
    axes[2].set_title("NashConv (scaled-truth search)")
    for ax in axes:
        ax.set_xlabel("training episodes x agents" if "hedge" in title else "timesteps per agent")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out / "history.png", dpi=110)
    plt.close(fig)


def hedge_dynamics(game=None, iterations: int = 100, profiles: int = 64, seed: int = 0, out="results/hedge",
                   misreports: ScalingMisreports | None = None, learning_rate: float | None = None,
                   payoff_range: float = 1.0, resume: bool = False, progress: bool = True) -> list[dict]:
    """Hedge dynamics in ``game`` (kwargs or env); returns the history rows (see the module docstring).

    ``timesteps`` in the history counts episodes played per agent (``iterations x profiles``).
    """
    if iterations < 1 or profiles < 1:
        raise ValueError(f"iterations and profiles must be >= 1, got {iterations}, {profiles}")
    kwargs = game_kwargs(game)
    spec = GameSpec.of(kwargs)
    benv = BatchedSequentialAllocation(1, **kwargs)
    mechanism, budget = benv.mechanism, np.array(benv.config.budget)
    misreports = misreports or ScalingMisreports(space=spec.support)
    n = len(spec.agents)
    learners = [HedgePolicy(spec.n_resources, misreports, iterations, learning_rate, payoff_range, seed=seed + 1000 * i)
                for i in range(n)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    saved = _load(out, resume)
    history, start = [], 0
    if saved is not None:
        for learner, state in zip(learners, saved["learners"]):
            learner.load_state_dict(state)
        history, start = saved["history"], saved["iteration"]
    fv, fx = learners[0].value_factors, learners[0].demand_factors
    for it in tqdm(range(start, iterations), desc="hedge dynamics", disable=not progress, initial=start,
                   total=iterations):
        values, demands = profile_types(kwargs, profiles, seed + 7919 * (it + 1))
        arms = np.stack([lr.sample_arms(profiles) for lr in learners], axis=1)             # (P, N)
        rv, rx = misreports.space.clip(values * fv[arms], demands * fx[arms][:, None])
        payoffs = np.stack([counterfactual_payoffs(mechanism, values, demands, budget, rv, rx, i, fv, fx, misreports.space)
                            for i in range(n)], axis=1)                                  # (P, N, K)
        realised = np.take_along_axis(payoffs, arms[..., None], axis=2)[..., 0]          # (P, N)
        truthful = utility(values[:, None], demands, mechanism.rollout(values, demands, budget)).sum(axis=1)
        est = summarize_nash_conv(payoffs.max(axis=2) - realised, realised, "hedge arms")
        s_v, c_v = log_distance(rv, values)
        s_x, c_x = log_distance(rx, demands)
        distance = (s_v + s_x.sum(axis=1)) / np.maximum(c_v + c_x.sum(axis=1), 1)  # (P, N), as in rollout()
        history.append({"iteration": it + 1, "timesteps": (it + 1) * profiles,
                        "report_distance": float(distance.mean()),
                        **_welfare_row(realised, truthful), "nash_conv": est.nash_conv, "nash_conv_ci": est.nash_conv_ci})
        for i, lr in enumerate(learners):
            lr.update(payoffs[:, i].mean(axis=0))
        _save(out, {"iteration": it + 1, "learners": [lr.state_dict() for lr in learners]}, history,
              f"Hedge dynamics, {spec.horizon} rounds, {n} agents x {spec.n_resources} resources")
    return history


def ppo_dynamics(game=None, learners=None, rounds: int = 5, timesteps_per_round: int = 10_000, eval_profiles: int = 64,
                 seed: int = 0, out="results/ppo", misreports: ScalingMisreports | None = None, n_envs: int = 16,
                 resume: bool = False, progress: bool = True) -> list[dict]:
    """Independent PPO (or one PPO best response when ``learners`` is one agent) in ``game``.

    Each round every learner trains ``timesteps_per_round`` (continuing its model) against the
    others' latest policies; then the profile is evaluated on ``eval_profiles`` fixed profiles
    (drawn with ``seed``) and its NashConv is estimated by the scaled-truth search.
    """
    from stable_baselines3 import PPO

    if rounds < 1 or timesteps_per_round < 1:
        raise ValueError(f"rounds and timesteps_per_round must be >= 1, got {rounds}, {timesteps_per_round}")
    kwargs = game_kwargs(game)
    spec = GameSpec.of(kwargs)
    learners = list(spec.agents) if learners is None else list(learners)
    if not learners or any(a not in spec.agents for a in learners):
        raise ValueError(f"learners must be a non-empty list of agents from {list(spec.agents)}, got {learners}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    oracle = PPOBestResponse(timesteps_per_round, seed=seed, n_envs=n_envs)
    types = profile_types(kwargs, eval_profiles, seed)
    benv = BatchedSequentialAllocation(eval_profiles, **kwargs)
    saved = _load(out, resume)
    history, start = ([], 0) if saved is None else (saved["history"], saved["round"])
    models, policies = {}, {a: TruthfulPolicy() for a in spec.agents}
    for agent in learners:
        path = out / f"{agent}.zip"
        if saved is not None and path.exists():
            models[agent] = PPO.load(path, device="cpu")
            policies[agent] = SB3Policy(models[agent])
    for r in tqdm(range(start, rounds), desc="PPO rounds", disable=not progress, initial=start, total=rounds):
        for agent in learners:
            others = {a: p for a, p in policies.items() if a != agent}
            policies[agent] = oracle.train(kwargs, agent, others, model=models.get(agent))
            models[agent] = policies[agent].model
            models[agent].save(out / f"{agent}.zip")
        played = rollout(benv, policies, seed=seed, options={"values": types[0], "demands": types[1]})
        est = nash_conv(kwargs, policies, types=types, seed=seed, misreports=misreports, progress=False)
        history.append({"iteration": r + 1, "timesteps": (r + 1) * timesteps_per_round,
                        "report_distance": float(played.report_distance.mean()),
                        **_welfare_row(played.utility, played.truthful_utility),
                        "nash_conv": est.nash_conv, "nash_conv_ci": est.nash_conv_ci})
        _save(out, {"round": r + 1, "learners": learners}, history,
              f"PPO ({', '.join(learners)} learning), {spec.horizon} rounds, {len(spec.agents)} agents x "
              f"{spec.n_resources} resources")
    return history

