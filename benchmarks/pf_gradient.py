"""Per-instance time of PF's backward pass: the reduced adjoint system against the dense one.

The vector-Jacobian product of the PF allocation (``mechanisms/pf_grad.py``) solves an adjoint
system per instance. The reference builds and solves the whole ``(3NM + M)``-square KKT system
(``pf_vjp(..., dense=True)``); the default keeps only the free entries and the active prices
(a few unknowns per instance). Both run on the same solved batch of the papers' distribution
with ``b = N/4`` per resource (so that resources are contested); each time is the best of
``--repeats`` passes, and the largest difference between the two gradients is printed.

    python benchmarks/pf_gradient.py
"""
from __future__ import annotations

import argparse

import numpy as np
from pf_solver import best_of, draw  # the solver benchmark's instances and timer (same folder)

from mechzoo.mechanisms.pf import solve_proportional_fairness
from mechzoo.mechanisms.pf_grad import pf_vjp

SIZES = [(2, 2, 4096), (10, 3, 2048), (50, 5, 128)]  # (N, M, batch)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print("| size | batch | dense µs/instance | reduced µs/instance | speed-up | max |difference| |")
    print("|---|---|---|---|---|---|")
    for n, m, batch in SIZES:
        v, x, b = draw(rng, batch, n, m)
        b = np.broadcast_to(b, (batch, m))
        past, w = np.zeros_like(v), np.ones((batch, n))
        solution = solve_proportional_fairness(v, x, b)
        grad = rng.standard_normal((batch, n, m))
        dense_s, dense = best_of(args.repeats, lambda: pf_vjp(v, x, b, past, w, solution, grad, dense=True), batch)
        reduced_s, reduced = best_of(args.repeats, lambda: pf_vjp(v, x, b, past, w, solution, grad), batch)
        gap = max(float(np.abs(r - d).max()) for r, d in zip(reduced, dense))
        print(f"| {n}×{m} | {batch} | {dense_s * 1e6:.1f} | {reduced_s * 1e6:.1f} | "
              f"{dense_s / reduced_s:.1f}× | {gap:.1e} |")


if __name__ == "__main__":
    main()
