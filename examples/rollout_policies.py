"""Roll out random and truthful policies in the sequential allocation game and compare with truth.

For each policy, plays a few episodes of SAMA(PF) and Independent(PF) (through PettingZoo's
registry) and prints every agent's mean total true utility, the utility it would have had if
everyone had reported truthfully on the same draws (the truthful shadow run carried in
``infos``), and the mean gain from the policy. Truthful play has gain exactly 0; random
misreports usually lose utility on average, though single agents can gain.

    python examples/rollout_policies.py [--episodes 20] [--agents 3] [--resources 2] [--horizon 10]
"""
from __future__ import annotations

import argparse

import numpy as np
import pettingzoo

import mechzoo.envs  # noqa: F401  (registers mechzoo/SequentialAllocation-v0)


def random_policy(env, obs, rng):
    space = env.action_space(env.possible_agents[0])
    return {a: rng.uniform(space.low, space.high).astype(np.float32) for a in env.agents}


def truthful_policy(env, obs, rng):
    # relative report mode: the zero action reports the true type
    return {a: np.zeros(env.action_space(a).shape, dtype=np.float32) for a in env.agents}


def rollout(env, policy, episodes: int, seed: int):
    rng = np.random.default_rng(seed)
    n = len(env.possible_agents)
    utilities, truthful = np.zeros((episodes, n)), np.zeros((episodes, n))
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        while env.agents:
            obs, rewards, terminations, truncations, infos = env.step(policy(env, obs, rng))
            for i, agent in enumerate(env.possible_agents):
                utilities[ep, i] += rewards[agent]
        for i, agent in enumerate(env.possible_agents):
            truthful[ep, i] = infos[agent]["cumulative_truthful_utility"]
            assert np.isclose(infos[agent]["cumulative_utility"], utilities[ep, i])
    return utilities, truthful


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--resources", type=int, default=2)
    parser.add_argument("--horizon", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    for meta in ("sama", "independent"):
        env = pettingzoo.make("parallel", "mechzoo/SequentialAllocation-v0", n_agents=args.agents,
                              n_resources=args.resources, horizon=args.horizon, meta=meta, one_shot="pf")
        for name, policy in (("truthful", truthful_policy), ("random", random_policy)):
            utilities, truthful = rollout(env, policy, args.episodes, args.seed)
            gain = utilities - truthful
            print(f"\n{env.mechanism.name}, {name} policy, {args.episodes} episodes "
                  f"(N={args.agents}, M={args.resources}, T={args.horizon}):")
            print(f"  {'agent':<8} {'utility':>10} {'truthful':>10} {'gain':>10} {'gain std':>10}")
            for i, agent in enumerate(env.possible_agents):
                print(f"  {agent:<8} {utilities[:, i].mean():10.4f} {truthful[:, i].mean():10.4f} "
                      f"{gain[:, i].mean():+10.4f} {gain[:, i].std():10.4f}")
            print(f"  welfare: sum of utilities {utilities.sum(1).mean():.4f} vs truthful {truthful.sum(1).mean():.4f}")


if __name__ == "__main__":
    main()
