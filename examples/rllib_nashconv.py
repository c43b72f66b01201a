"""Train multi-agent PPO in RLlib (one policy per agent), then measure the NashConv of the learned profile.

The game is SAMA(PF) with 2 agents and 2 resources (``--horizon`` rounds, default 10). Every
agent has its own RLlib PPO module (:mod:`mechzoo.agents.rllib`); after ``--iterations``
training iterations the modules' deterministic actions form a profile, handed to
``mechzoo.agents.nash_conv.nash_conv`` (scripted-deviation search on ``--profiles`` type
profiles, a lower bound). For reference the script measures the truthful profile the same way
(its NashConv is SAMA(PF)'s full exploitability on the same draws).

Outputs in ``--out``: the RLlib checkpoint (``--out/checkpoint``, resumed on a rerun),
``history.csv`` (mean episode return per agent per iteration), ``nash_conv.json`` and
``returns.png``.

    python examples/rllib_nashconv.py [--iterations 20] [--profiles 200] [--seed 0] [--out results/rllib_nashconv]
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mechzoo.agents.nash_conv import nash_conv  # noqa: E402
from mechzoo.agents.policies import TruthfulPolicy, rollout  # noqa: E402
from mechzoo.agents.rllib import ppo_config, train_ppo  # noqa: E402
from mechzoo.envs import SequentialAllocationEnv  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=10)
    parser.add_argument("--batch", type=int, default=400, help="env steps (rounds) per iteration")
    parser.add_argument("--profiles", type=int, default=200, help="type profiles for NashConv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/rllib_nashconv")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    game = dict(n_agents=2, n_resources=2, horizon=args.horizon, meta="sama", one_shot="pf")
    config = ppo_config(game, seed=args.seed, train_batch_size=args.batch, minibatch_size=min(args.batch, 128))
    policies, history = train_ppo(game, iterations=args.iterations, seed=args.seed, checkpoint=out / "checkpoint",
                                  config=config)

    eval_seed = args.seed + 10_000
    learned = nash_conv(game, policies, profiles=args.profiles, seed=eval_seed)
    truthful = nash_conv(game, TruthfulPolicy(), profiles=args.profiles, seed=eval_seed)
    played = rollout(SequentialAllocationEnv(**game), policies, episodes=args.profiles, seed=eval_seed)
    summary = {"game": game, "iterations": len(history), "seed": args.seed, "batch": args.batch,
               "profiles": args.profiles, "oracle": learned.oracle,
               "learned": {"nash_conv": learned.nash_conv, "nash_conv_ci95": learned.nash_conv_ci,
                           "per_agent": learned.per_agent.tolist(),
                           "utility_per_agent": played.utility.mean(axis=0).tolist(),
                           "gain_vs_truthful_per_agent": played.gain.mean(axis=0).tolist(),
                           "report_distance_per_agent": played.report_distance.mean(axis=0).tolist()},
               "truthful": {"nash_conv": truthful.nash_conv, "nash_conv_ci95": truthful.nash_conv_ci,
                            "per_agent": truthful.per_agent.tolist()}}
    (out / "nash_conv.json").write_text(json.dumps(summary, indent=2))
    with open(out / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    _plot(history, out / "returns.png")
    print(f"learned profile ({len(history)} iterations): {learned}")
    print(f"truthful profile: {truthful}")


def _plot(history: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key in [k for k in history[0] if k.startswith("return_")]:
        ax.plot([h["iteration"] for h in history], [h[key] for h in history], label=key[len("return_"):])
    ax.set_xlabel("training iteration")
    ax.set_ylabel("mean episode return (true utility)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
