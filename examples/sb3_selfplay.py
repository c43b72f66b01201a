"""Parameter-sharing self-play with SB3 PPO through SuperSuit, then the NashConv of the learned profile.

One PPO policy plays every agent of SAMA(PF) (2 agents, 2 resources, horizon 5 by default) in
``n_envs`` copies of the game (:mod:`mechzoo.agents.sb3_selfplay`). Afterwards the shared policy
plays every agent (its mean action), and the script prints each agent's gain over truthful play
and the NashConv of that profile (scripted-deviation search, a lower bound). The model is saved
to ``--out/model.zip`` after training, and ``--resume`` continues from it; the figures go to
``--out/selfplay.json``.

    python examples/sb3_selfplay.py [--timesteps 20000] [--seed 0] [--out results/sb3_selfplay] [--resume]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from stable_baselines3 import PPO

from mechzoo.agents.nash_conv import nash_conv
from mechzoo.agents.policies import SB3Policy, rollout
from mechzoo.agents.sb3_selfplay import train_selfplay
from mechzoo.envs import SequentialAllocationEnv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=20_000, help="agent-slot steps of training")
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--profiles", type=int, default=200, help="type profiles for the evaluation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/sb3_selfplay")
    parser.add_argument("--resume", action="store_true", help="continue training the saved model")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    game = dict(n_agents=2, n_resources=2, horizon=args.horizon, meta="sama", one_shot="pf")
    model = PPO.load(out / "model.zip") if args.resume else None
    model = train_selfplay(game, total_timesteps=args.timesteps, seed=args.seed, n_envs=args.n_envs, model=model,
                           progress=True)
    model.save(out / "model.zip")

    policy = SB3Policy(model)
    played = rollout(SequentialAllocationEnv(**game), policy, episodes=args.profiles, seed=args.seed + 1)
    estimate = nash_conv(game, policy, profiles=args.profiles, seed=args.seed + 1)
    summary = {"game": game, "timesteps_total": int(model.num_timesteps), "seed": args.seed,
               "gain_vs_truthful_per_agent": played.gain.mean(axis=0).tolist(),
               "report_distance_per_agent": played.report_distance.mean(axis=0).tolist(),
               "nash_conv": estimate.nash_conv, "nash_conv_ci95": estimate.nash_conv_ci, "oracle": estimate.oracle}
    (out / "selfplay.json").write_text(json.dumps(summary, indent=2))
    print(f"trained {model.num_timesteps} slot steps; gain over truthful per agent "
          f"{[round(g, 4) for g in summary['gain_vs_truthful_per_agent']]}")
    print(estimate)


if __name__ == "__main__":
    main()
