"""Per-instance time of the batched PF solver against the cvxpy reference (Clarabel).

The reference is compiled once per size with ``cp.Parameter``s and solved with Clarabel's
default tolerances (its fastest setting); cvxpy has no batching, so its per-instance time is
measured on up to ``--reference-sample`` instances and holds for any batch size. Our solver
is timed through the public ``proportional_fairness`` (validation included): batch 1 is a
loop of single-instance calls, batch 4096 is one call. Every time is the best of
``--repeats`` passes, the same for both solvers: load from elsewhere on the machine only
ever adds time. Instances follow the papers' distribution (v ~ U(0.1, 1),
x = U(0.1, 1) * Bernoulli(0.5), b = N/4 per resource).

    python benchmarks/pf_solver.py
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

from mechzoo.mechanisms import proportional_fairness
from mechzoo.mechanisms.pf_reference import solve_reference_instance

SIZES = [(2, 2), (10, 3), (50, 5)]
BATCHES = [1, 4096]


def draw(rng: np.random.Generator, batch: int, n: int, m: int):
    v = rng.uniform(0.1, 1.0, (batch, n, m))
    x = rng.uniform(0.1, 1.0, (batch, n, m)) * (rng.random((batch, n, m)) < 0.5)
    return v, x, np.full(m, n / 4)


def best_of(repeats, solve, count):
    """Per-instance seconds of the fastest of ``repeats`` calls of ``solve()`` (which solves
    ``count`` instances), and the output of the last call."""
    best, out = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = solve()
        best = min(best, time.perf_counter() - start)
    return best / count, out


def solve_with_reference(v, x, b):
    """cvxpy allocations ``(len(v), N, M)``; NaN where Clarabel gives up (left out of |da|)."""
    past, w = np.zeros_like(v[0]), np.ones(v.shape[1])
    out = np.full(v.shape, np.nan)
    for t in range(len(v)):
        try:
            out[t] = solve_reference_instance(v[t], x[t], b, past, w, tight=False)[0]
        except RuntimeError:
            pass
    return out


def time_reference(v, x, b, repeats):
    solve_with_reference(v[:1], x[:1], b)  # compile outside the clock
    return best_of(repeats, lambda: solve_with_reference(v, x, b), len(v))


def time_fast(v, x, b, batch, repeats):
    proportional_fairness(v[:1], x[:1], b)  # load the compiled kernel outside the clock
    if batch == 1:
        count = min(len(v), 500)
        seconds, out = best_of(repeats, lambda: [proportional_fairness(v[t], x[t], b) for t in range(count)], count)
        return seconds, np.stack(out)
    return best_of(repeats, lambda: proportional_fairness(v, x, b), len(v))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-sample", type=int, default=200, help="instances timed with cvxpy per size")
    parser.add_argument("--repeats", type=int, default=3, help="passes timed per measurement; the fastest counts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows = []
    for n, m in tqdm(SIZES, desc="sizes"):
        v, x, b = draw(rng, max(BATCHES), n, m)
        sample = min(args.reference_sample, len(v))
        ref_time, ref_alloc = time_reference(v[:sample], x[:sample], b, args.repeats)
        for batch in BATCHES:
            fast_time, fast_alloc = time_fast(v, x, b, batch, args.repeats)
            k = min(sample, len(fast_alloc))
            diff = np.nanmax(np.abs(fast_alloc[:k] - ref_alloc[:k]))
            rows.append((f"{n}x{m}", batch, ref_time, fast_time, ref_time / fast_time, diff))
    print(f"\n{'size':>6} {'batch':>6} {'cvxpy us/inst':>14} {'mechzoo us/inst':>16} {'speed-up':>9} {'max |da|':>10}")
    for size, batch, ref_time, fast_time, ratio, diff in rows:
        print(f"{size:>6} {batch:>6} {ref_time * 1e6:14.1f} {fast_time * 1e6:16.2f} {ratio:8.0f}x {diff:10.1e}")
    print("\nmax |da|: largest allocation difference to cvxpy over the timed reference sample "
          "(cvxpy at default tolerances is accurate to about 1e-5; instances where Clarabel "
          "failed are left out).")


if __name__ == "__main__":
    main()
