"""Train an SB3 PPO best response for one agent against truthful opponents, directly on the gym view.

``BestResponseEnv`` (:mod:`mechzoo.agents.best_response_env`) is a plain ``gymnasium.Env``:
agent_0 of SAMA(PF) (2 agents, 2 resources, horizon 5 by default) learns while the other agent
reports truthfully. The reward is the learner's gain over the truthful shadow run (same optimal
policies as the utility, less variance). After training, the learned policy (its mean action)
plays ``--profiles`` episodes against the same opponents and the script prints its mean gain
over truthful play: a lower bound on the full exploitability of SAMA(PF) in this game, which
the scripted search of ``full_best_response`` also bounds. The model is saved to
``--out/model.zip`` and ``--resume`` continues from it; figures go to ``--out/best_response.json``.

    python examples/sb3_best_response.py [--timesteps 20000] [--seed 0] [--out results/sb3_best_response]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from stable_baselines3 import PPO

from mechzoo.agents.best_response_env import BestResponseEnv
from mechzoo.agents.policies import SB3Policy, TruthfulPolicy, rollout
from mechzoo.envs import SequentialAllocationEnv
from mechzoo.metrics import summarize_gains


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--profiles", type=int, default=200, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/sb3_best_response")
    parser.add_argument("--resume", action="store_true", help="continue training the saved model")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    game = dict(n_agents=2, n_resources=2, horizon=args.horizon, meta="sama", one_shot="pf")
    env = BestResponseEnv(game, learner="agent_0", opponents=TruthfulPolicy(), reward="gain")
    if args.resume:
        model = PPO.load(out / "model.zip", env=env)
    else:
        model = PPO("MlpPolicy", env, n_steps=256, batch_size=64, seed=args.seed, verbose=0)
    model.learn(args.timesteps, reset_num_timesteps=not args.resume)
    model.save(out / "model.zip")

    profile = {"agent_0": SB3Policy(model), "agent_1": TruthfulPolicy()}
    played = rollout(SequentialAllocationEnv(**game), profile, episodes=args.profiles, seed=args.seed + 1)
    gain = summarize_gains(played.gain[:, :1], oracle=f"PPO, {model.num_timesteps} steps")
    summary = {"game": game, "timesteps_total": int(model.num_timesteps), "seed": args.seed,
               "learner_gain_mean": gain.mean, "learner_gain_ci95": gain.mean_ci,
               "learner_report_distance": float(played.report_distance[:, 0].mean())}
    (out / "best_response.json").write_text(json.dumps(summary, indent=2))
    print(f"trained {model.num_timesteps} steps; agent_0's mean gain over truthful play "
          f"{gain.mean:.4f} ± {gain.mean_ci:.4f} (95% CI, {args.profiles} episodes)")


if __name__ == "__main__":
    main()
