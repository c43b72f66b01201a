"""Reference proportional-fairness solver built on cvxpy (Clarabel), for tests and benchmarks.

Solves eq. (3) of the SAMA paper one instance at a time::

    max_a  sum_i w_i log(v_i . (a_i + past_i)) - <linear, a>   s.t.  0 <= a <= x,  sum_i a_i <= b

(``linear >= 0`` optional, zero for plain PF) with the same conventions as the fast solver (see :mod:`mechzoo.mechanisms.pf`): agents
that cannot reach a positive utility are left out of the objective and get 0,
and entries with zero reported value get 0. For unit weights the problem is compiled once
per ``(N, M)`` with ``cp.Parameter``s, so repeated solves skip cvxpy's canonicalisation.
"""
from __future__ import annotations

from functools import lru_cache

import cvxpy as cp
import numpy as np

from .feasibility import repair_feasibility
from .validation import Instance, as_float_array, check_instance


# Much tighter than Clarabel's defaults (1e-8): the log objective is flat at the optimum, so an
# objective gap eps moves the allocation by about sqrt(eps); 1e-12 gives allocations to ~1e-7.
# Clarabel then often reports OPTIMAL_INACCURATE, which is accepted.
CLARABEL_SETTINGS = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "tol_ktratio": 1e-12, "max_iter": 500}


@lru_cache(maxsize=None)
def _parametric_problem(n: int, m: int):
    """The unit-weight PF program for size ``(n, m)``, compiled once."""
    values = cp.Parameter((n, m), nonneg=True)
    caps = cp.Parameter((n, m), nonneg=True)
    budget = cp.Parameter(m, nonneg=True)
    offset = cp.Parameter(n, nonneg=True)
    alloc = cp.Variable((n, m))
    utility = offset + cp.sum(cp.multiply(values, alloc), axis=1)
    constraints = [alloc >= 0, alloc <= caps, cp.sum(alloc, axis=0) <= budget]
    problem = cp.Problem(cp.Maximize(cp.sum(cp.log(utility))), constraints)
    # The first solve of a parametric problem takes cvxpy's compiling path and later ones its
    # cached path, whose results differ in the last digits: solve once here so that every
    # real solve takes the same path and the reference is deterministic.
    for param, value in zip((values, caps, budget, offset), (np.ones((n, m)), np.ones((n, m)), np.ones(m), np.ones(n))):
        param.value = value
    problem.solve(solver=cp.CLARABEL)
    return problem, (values, caps, budget, offset), alloc, constraints[2]


def _weighted_problem(values, caps, budget, offset, weights, linear):
    """A one-off program for non-unit weights (weights multiply non-affine terms, so no DPP)
    or a linear term."""
    n, m = values.shape
    alloc = cp.Variable((n, m))
    utility = offset + cp.sum(cp.multiply(values, alloc), axis=1)
    constraints = [alloc >= 0, alloc <= caps, cp.sum(alloc, axis=0) <= budget]
    problem = cp.Problem(cp.Maximize(weights @ cp.log(utility) - cp.sum(cp.multiply(linear, alloc))), constraints)
    return problem, alloc, constraints[2]


def solve_reference_instance(values, demands, budget, past, weights, tight: bool = True,
                             linear=None) -> tuple[np.ndarray, np.ndarray]:
    """Solve one validated instance; returns ``(allocation (N, M), prices (M,))``.

    ``linear (N, M) >= 0`` is the optional linear term of regularised PF (``None``: plain PF).

    ``tight=False`` uses Clarabel's default tolerances (faster, allocations to about 1e-5).

    The program is posed in scaled units (each resource in units of its largest effective
    demand, each agent's utility in units of its largest attainable utility), which does not
    change the optimum but keeps Clarabel's absolute tolerances meaningful for tiny or huge
    budgets.
    """
    n, m = values.shape
    linear = np.zeros((n, m)) if linear is None else linear
    bias = np.einsum("nm,nm->n", values, past)
    caps = np.where(values > 0, demands, 0.0)
    included = (np.einsum("nm,nm->n", values, np.minimum(caps, budget)) > 0) | (bias > 0)
    allocation = np.zeros((n, m))
    prices = np.zeros(m)
    if not included.any():
        return allocation, prices
    # Resources whose whole demand fits are not contested: everyone gets its demand. Taking
    # them out of the program spares Clarabel constraints that never bind (it can stall on them).
    # A linear term on a demanded entry can make its bound slack: such resources stay in.
    caps = np.where(included[:, None], caps, 0.0)
    uncontested = (caps.sum(axis=0) <= budget) & ~np.any((linear > 0) & (caps > 0), axis=0)
    fixed = np.where(uncontested, caps, 0.0)
    bias = bias + np.einsum("nm,nm->n", values, fixed)
    caps = np.where(uncontested, 0.0, caps)
    sigma = np.minimum(caps, budget).max(axis=0)
    sigma = np.where(sigma > 0, sigma, 1.0)
    v_scaled = values * sigma
    kappa = bias + np.einsum("nm,nm->n", v_scaled, np.minimum(caps, budget) / sigma)
    kappa = np.where(included & (kappa > 0), kappa, 1.0)
    # Excluded agents keep a constant log(1) term and a zero cap, so one program serves all.
    v_in = np.where(included[:, None], v_scaled / kappa[:, None], 0.0)
    # a <= min(x, b) is the same feasible set as a <= x; capping keeps the scaled data O(1).
    caps_in = np.where(included[:, None], np.minimum(caps, budget) / sigma, 0.0)
    offset = np.where(included, bias / kappa, 1.0)
    b_in = budget / sigma
    z_in = np.where(included[:, None], linear * sigma, 0.0)
    if np.all(weights == 1.0) and not np.any(z_in > 0):
        problem, params, alloc, budget_con = _parametric_problem(n, m)
        for param, value in zip(params, (v_in, caps_in, b_in, offset)):
            param.value = value
    else:
        problem, alloc, budget_con = _weighted_problem(v_in, caps_in, b_in, offset, np.where(included, weights, 0.0), z_in)
    try:
        problem.solve(solver=cp.CLARABEL, **(CLARABEL_SETTINGS if tight else {}))
    except cp.error.SolverError:  # the tight tolerances can fail on badly scaled data
        try:
            problem.solve(solver=cp.CLARABEL)
        except cp.error.SolverError as err:
            raise RuntimeError("reference PF solver (Clarabel) failed on this instance") from err
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise RuntimeError(f"reference PF solver failed with status {problem.status}")
    allocation = fixed + repair_feasibility(alloc.value * sigma, caps, np.where(uncontested, 0.0, budget))
    prices = np.maximum(np.asarray(budget_con.dual_value, dtype=float), 0.0) / sigma
    return allocation, prices


def check_linear(linear, inst: Instance) -> np.ndarray:
    """The linear term broadcast to ``inst``'s shape ``(*batch, N, M)`` (zeros if ``None``).

    Raises ``ValueError`` if it is negative, not finite or does not broadcast.
    """
    full = inst.batch_shape + (inst.n_agents, inst.n_resources)
    if linear is None:
        return np.zeros(full)
    linear = as_float_array(linear, "linear", 2)
    try:
        return np.broadcast_to(linear, full)
    except ValueError as err:
        raise ValueError(f"linear must broadcast to (..., N, M) = {full}, got shape {linear.shape}") from err


def proportional_fairness_reference(values, demands, budget, past=None, weights=None, return_prices: bool = False,
                                    linear=None):
    """Proportional fairness by cvxpy/Clarabel, looping over the batch.

    Shapes as :func:`mechzoo.mechanisms.proportional_fairness`: ``values, demands, past, linear
    (..., N, M)``, ``budget (..., M)``, ``weights (..., N)``; returns ``allocation (..., N, M)``
    (and ``prices (..., M)``, the budget constraints' duals, if ``return_prices``).
    """
    inst = check_instance(values, demands, budget, past, weights)
    z = check_linear(linear, inst)
    batch = inst.batch_shape
    allocation = np.zeros(batch + (inst.n_agents, inst.n_resources))
    prices = np.zeros(batch + (inst.n_resources,))
    for idx in np.ndindex(*batch):
        allocation[idx], prices[idx] = solve_reference_instance(
            inst.values[idx], inst.demands[idx], inst.budget[idx], inst.past[idx], inst.weights[idx], linear=z[idx]
        )
    return (allocation, prices) if return_prices else allocation
