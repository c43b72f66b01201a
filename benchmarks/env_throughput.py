"""Throughput of the sequential allocation game: single env and batched form, fast PF vs cvxpy PF.

Game: SAMA(PF), N = 10 agents, M = 3 resources, T = 10 rounds, default budget and types.
Four measurements, all with uniformly random actions (so the truthful shadow run is computed
alongside the real one: the worst case) and, for the single env, also with truthful actions
(the shadow run then coincides with the real run and is not recomputed):

* single env (``SequentialAllocationEnv.step`` on dicts): steps/s;
* batched form (``BatchedSequentialAllocation``, ``--n-envs`` instances): agent-steps/s
  (instances x N x rounds per second);
* the same two with PF replaced by the cvxpy reference (``proportional_fairness_reference``
  wrapped as a ``OneShotMechanism``). cvxpy solves one instance at a time, so its batched
  throughput is measured on ``--reference-envs`` instances for one episode and extrapolated
  (its cost per instance-step does not depend on the batch size); the output says so.

Episode resets are included in the timings; drawing the random actions is not (they are
drawn beforehand). Targets: single env >= 2,000 steps/s, batched >= 500,000 agent-steps/s,
batched >= 100x the cvxpy-backed batched throughput.

    python benchmarks/env_throughput.py [--seconds 3] [--n-envs 4096]
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from mechzoo.envs import BatchedSequentialAllocation, SequentialAllocationEnv
from mechzoo.mechanisms import OneShotMechanism, proportional_fairness_reference

N, M, T = 10, 3, 10


def pf_reference_allocate(values, demands, budget, past=None):
    return proportional_fairness_reference(values, demands, budget, past)


PF_REFERENCE = OneShotMechanism("pf_cvxpy", pf_reference_allocate, "PF by the cvxpy reference")


def time_single(one_shot, policy: str, seconds: float, max_steps: int, seed: int) -> tuple[float, int]:
    env = SequentialAllocationEnv(n_agents=N, n_resources=M, horizon=T, meta="sama", one_shot=one_shot)
    rng = np.random.default_rng(seed)
    space = env.action_space("agent_0")
    pool = [dict(zip(env.possible_agents, rng.uniform(space.low, space.high, (N, 2 * M)).astype(np.float32)))
            for _ in range(64)]
    env.reset(seed=seed)
    env.step(env.truthful_actions())  # load compiled code and caches outside the clock
    env.reset(seed=seed)
    steps, start = 0, time.perf_counter()
    while steps < max_steps and time.perf_counter() - start < seconds:
        if not env.agents:
            env.reset()
        env.step(env.truthful_actions() if policy == "truthful" else pool[steps % 64])
        steps += 1
    return steps / (time.perf_counter() - start), steps


def time_batched(one_shot, n_envs: int, seconds: float, max_episodes: int, seed: int,
                 policy: str = "random") -> tuple[float, int]:
    benv = BatchedSequentialAllocation(n_envs, n_agents=N, n_resources=M, horizon=T, meta="sama", one_shot=one_shot)
    rng = np.random.default_rng(seed)
    pool = [benv.sample_actions(rng) for _ in range(T)]
    benv.reset(seed=seed)
    benv.step(pool[0])  # load compiled code outside the clock
    steps, episodes, start = 0, 0, time.perf_counter()
    while episodes < max_episodes and (episodes == 0 or time.perf_counter() - start < seconds):
        benv.reset()
        for t in range(T):
            benv.step(benv.truthful_actions() if policy == "truthful" else pool[t])
            steps += 1
        episodes += 1
    return steps * n_envs * N / (time.perf_counter() - start), steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="time budget per fast measurement")
    parser.add_argument("--n-envs", type=int, default=4096, help="instances in the batched form")
    parser.add_argument("--reference-steps", type=int, default=60, help="single-env steps timed with cvxpy")
    parser.add_argument("--reference-envs", type=int, default=8, help="batched instances timed with cvxpy (1 episode)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print(f"SAMA(PF) game, N={N} M={M} T={T}; {os.cpu_count()} CPU cores; random actions unless noted")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        single_truthful, _ = time_single("pf", "truthful", args.seconds, 10**9, args.seed)
        single_random, _ = time_single("pf", "random", args.seconds, 10**9, args.seed)
        batched, _ = time_batched("pf", args.n_envs, args.seconds, 10**9, args.seed)
        batched_truthful, _ = time_batched("pf", args.n_envs, args.seconds, 10**9, args.seed, "truthful")
    fallbacks = sum("did not converge" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cvxpy's "solution may be inaccurate" at tight tolerances
        single_ref, ref_steps = time_single(PF_REFERENCE, "random", 60.0, args.reference_steps, args.seed)
        batched_ref, _ = time_batched(PF_REFERENCE, args.reference_envs, 0.0, 1, args.seed)

    rows = [
        ("single env, fast PF, truthful actions", f"{single_truthful:,.0f} steps/s", f"{single_truthful * N:,.0f}",
         f"{single_truthful / single_ref:,.1f}x"),
        ("single env, fast PF", f"{single_random:,.0f} steps/s", f"{single_random * N:,.0f}",
         f"{single_random / single_ref:,.1f}x"),
        (f"single env, cvxpy PF ({ref_steps} steps)", f"{single_ref:,.1f} steps/s", f"{single_ref * N:,.0f}", "1x"),
        (f"batched x{args.n_envs}, fast PF, truthful actions", f"{batched_truthful / N:,.0f} env-steps/s",
         f"{batched_truthful:,.0f}", f"{batched_truthful / batched_ref:,.0f}x"),
        (f"batched x{args.n_envs}, fast PF", f"{batched / N:,.0f} env-steps/s", f"{batched:,.0f}",
         f"{batched / batched_ref:,.0f}x"),
        (f"batched, cvxpy PF (x{args.reference_envs}, 1 episode, extrapolated)", f"{batched_ref / N:,.1f} env-steps/s",
         f"{batched_ref:,.0f}", "1x"),
    ]
    widths = [max(len(r[j]) for r in rows + [("configuration", "throughput", "agent-steps/s", "vs cvxpy")])
              for j in range(4)]
    header = ("configuration", "throughput", "agent-steps/s", "vs cvxpy")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print("cvxpy batched throughput is extrapolated: cvxpy solves instances one by one, so its time per "
          f"instance-step measured on {args.reference_envs} instances holds for {args.n_envs}.")
    if fallbacks:
        print(f"note: the fast PF solver handed instances to the cvxpy fallback in {fallbacks} calls during the "
              "fast-PF timings (included in them)")
    checks = [
        ("single env >= 2,000 steps/s (random actions)", single_random >= 2000),
        ("batched >= 500,000 agent-steps/s", batched >= 500_000),
        ("batched >= 100x cvxpy batched", batched >= 100 * batched_ref),
    ]
    for name, ok in checks:
        print(f"target {name}: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
