"""Proportional fairness (PF), batched and exact: the allocation maximising Nash social welfare.

Solves eq. (3) of the SAMA paper for every instance of a batch::

    max_a  sum_i w_i log(v_i . (a_i + past_i))   s.t.  0 <= a <= x,  sum_i a_{i,m} <= b_m

(clipped-linear utilities: with ``a <= x`` the utility of ``a + past`` under demand
``x + past`` is linear). An optional linear term ``linear (..., N, M) >= 0`` adds
``- <linear, a>`` to the objective: the regularised PF layer of RPF-Net (eq. 9 of the RPF-Net
paper); without it the solver runs exactly as plain PF. The solver is the compiled interior-point kernel of
:mod:`mechzoo.mechanisms.pf_kernel`; instances it cannot finish are re-solved by the cvxpy
reference with a warning.

Conventions, shared with :func:`~mechzoo.mechanisms.pf_reference.proportional_fairness_reference`:

* agents that cannot reach a positive utility (no past allocation, and no valued demand for
  a resource with budget) are left out of the objective and get 0;
* an entry with zero reported value gets 0 (giving it anything cannot raise the objective);
* a resource whose total demand fits in its budget gives everyone its demand.

Ties. When the PF allocation is not unique (the utilities always are: the objective is
strictly concave in them), the interior-point iterates follow the central path, which ends
near the analytic centre of the optimal face: the solver picks the "middle" optimum, so
agents with identical reports receive identical allocations.

The returned ``prices`` are the budget constraints' multipliers: the PF allocation is the
competitive equilibrium from equal incomes (weights as incomes) at these prices.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from . import pf_kernel
from .feasibility import column_totals, repair_feasibility
from .pf_reference import check_linear, solve_reference_instance
from .validation import Instance, check_instance

DEFAULT_TOLERANCE = 1e-12
DEFAULT_MAX_ITER = 100
TINY = 1e-150  # inputs below this (in their own units) count as 0: see _flush_tiny


@dataclass(frozen=True)
class PFSolution:
    """A solved batch. Shapes: ``allocation, mu, nu (..., N, M)``, ``prices (..., M)``, ``converged (...)``.

    ``mu`` and ``nu`` are the multipliers of ``a >= 0`` and ``a <= x``; with ``prices`` they
    complete the KKT system (see :func:`kkt_residual`). ``from_reference`` marks instances
    that the fast solver handed to the cvxpy reference (their ``mu, nu`` are reconstructed).
    """

    allocation: np.ndarray
    prices: np.ndarray
    mu: np.ndarray
    nu: np.ndarray
    iterations: np.ndarray
    from_reference: np.ndarray


def flatten_batch(arr: np.ndarray, tail: int) -> np.ndarray:
    """A writeable C-contiguous copy with the batch dimensions flattened into one, keeping the
    last ``tail`` (read-only views would make numba compile a second specialisation)."""
    return np.array(arr.reshape((-1,) + arr.shape[arr.ndim - tail:]), dtype=np.float64, order="C")


def _flush_tiny(arr: np.ndarray) -> np.ndarray:
    """Treat amounts below ``TINY`` as zero, so that rescaling by them cannot overflow."""
    arr[arr < TINY] = 0.0
    return arr


def resource_scale(values, demands, budget) -> np.ndarray:
    """Each resource's unit for scale-free residuals: its largest effective demand
    ``max_i min(x_im, b_m)`` over entries with positive value (1 where that is 0). ``(..., M)``."""
    scale = np.minimum(np.where(values > 0, demands, 0.0), budget[..., None, :]).max(axis=-2)
    return np.where(scale > 0, scale, 1.0)


def bias_utility(values: np.ndarray, past: np.ndarray) -> np.ndarray:
    """``c_i = v_i . past_i``, the utility each agent already has: ``(..., N, M) -> (..., N)``."""
    return np.einsum("...nm,...nm->...n", values, past)


def solve_proportional_fairness(values, demands, budget, past=None, weights=None, linear=None,
                                tol: float = DEFAULT_TOLERANCE, max_iter: int = DEFAULT_MAX_ITER) -> PFSolution:
    """Solve PF for a batch and return the allocation with its multipliers.

    Shapes: ``values, demands, past, linear (..., N, M)``, ``budget (..., M)``, ``weights
    (..., N)`` (leading dimensions broadcast; ``linear`` must broadcast to the others' batch).
    Units: demands, budget and allocation share each resource's unit; values are utility per
    unit; ``linear`` is per unit of resource, in the units of the log objective.
    """
    inst = check_instance(values, demands, budget, past, weights)
    return solve_validated(inst, None if linear is None else check_linear(linear, inst), tol, max_iter)


def solve_validated(inst: Instance, linear: np.ndarray | None = None, tol: float = DEFAULT_TOLERANCE,
                    max_iter: int = DEFAULT_MAX_ITER) -> PFSolution:
    """Solve a batch already validated by ``check_instance``; ``linear`` is the linear term
    broadcast to the batch (validated by ``check_linear``) or ``None`` (plain PF)."""
    batch, n, m = inst.batch_shape, inst.n_agents, inst.n_resources
    v, x, b = (_flush_tiny(flatten_batch(t, k)) for t, k in ((inst.values, 2), (inst.demands, 2), (inst.budget, 1)))
    c, w = _flush_tiny(flatten_batch(bias_utility(inst.values, inst.past), 1)), flatten_batch(inst.weights, 1)
    size = v.shape[0]
    z = np.zeros((size, n, m)) if linear is None else _flush_tiny(flatten_batch(linear, 2))
    a, mu, nu = np.zeros((size, n, m)), np.zeros((size, n, m)), np.zeros((size, n, m))
    prices = np.zeros((size, m))
    converged, iterations = np.zeros(size, dtype=bool), np.zeros(size, dtype=np.int64)
    pf_kernel.solve_batch(v, x, b, c, w, z, tol, max_iter, a, prices, mu, nu, converged, iterations)
    failed = np.flatnonzero(~converged)
    if failed.size:
        warnings.warn(f"PF interior point did not converge on {failed.size} of {size} instance(s); "
                      "solving those with the cvxpy reference", RuntimeWarning, stacklevel=3)
        past = flatten_batch(inst.past, 2)
        for t in failed:
            try:
                a[t], prices[t] = solve_reference_instance(v[t], x[t], b[t], past[t], w[t], linear=z[t])
            except RuntimeError:
                warnings.warn("the reference failed too: keeping the interior point's last (feasible) "
                              "iterate", RuntimeWarning, stacklevel=3)
                continue
            mu[t], nu[t] = bound_multipliers(v[t], x[t], a[t], prices[t], c[t], w[t], z[t])
    broken = ~np.isfinite(a).all(axis=(1, 2))
    if broken.any():  # never return NaN: an empty allocation is feasible
        warnings.warn(f"PF failed on {broken.sum()} instance(s); they receive nothing", RuntimeWarning, stacklevel=3)
        a[broken] = 0.0
    a = repair_feasibility(a, x, b)
    return PFSolution(
        allocation=a.reshape(batch + (n, m)), prices=prices.reshape(batch + (m,)),
        mu=mu.reshape(batch + (n, m)), nu=nu.reshape(batch + (n, m)),
        iterations=iterations.reshape(batch), from_reference=(~converged).reshape(batch),
    )


def bound_multipliers(values, demands, allocation, prices, bias, weights, linear=0.0):
    """Multipliers of ``a >= 0`` and ``a <= x`` implied by stationarity, given the prices.

    ``gain = w_i v_im / s_i - price_m - linear_im``; a positive gain is carried by ``nu``, a
    negative one by ``mu``. Left-out agents (zero utility) get zeros. Shapes as in :class:`PFSolution`.
    """
    s = bias + np.einsum("...nm,...nm->...n", values, allocation)
    safe = np.where(s > 0, s, 1.0)
    gain = np.where((s > 0)[..., None],
                    weights[..., None] * values / safe[..., None] - prices[..., None, :] - linear, 0.0)
    return np.maximum(-gain, 0.0), np.maximum(gain, 0.0)


def proportional_fairness(values, demands, budget, past=None, weights=None, linear=None) -> np.ndarray:
    """The PF allocation ``(..., N, M)`` for reports ``values, demands (..., N, M)`` and ``budget (..., M)``.

    ``past (..., N, M)`` is the bias ã (allocation already received, which counts in each
    agent's utility); ``weights (..., N)`` are the Nash-welfare exponents (default 1);
    ``linear (..., N, M) >= 0`` is the optional linear term of regularised PF.
    """
    return solve_proportional_fairness(values, demands, budget, past, weights, linear).allocation


def proportional_fairness_checked(inst: Instance) -> np.ndarray:
    """Plain PF ``(..., N, M)`` of an instance already validated by ``check_instance``."""
    return solve_validated(inst).allocation


def kkt_residual(values, demands, budget, solution: PFSolution, past=None, weights=None, linear=None) -> np.ndarray:
    """Largest violation of PF's KKT conditions per instance, in scale-free units ``(...)``.

    Each resource is measured in units of its largest effective demand ``sigma_m`` (so a
    price becomes ``price * sigma_m``) and each agent's utility is dimensionless inside the
    log; stationarity and the bound complementarities are relative where the scaled marginal
    utility exceeds 1 (agents with tiny utility have huge marginals and multipliers), and
    stationarity also where the scaled price does (its terms then cancel to within the price's
    round-off: a resource with zero budget is priced at the largest marginal utility). Checks
    stationarity ``-w v/s - mu + nu + price + linear = 0`` for included agents, primal
    feasibility, dual feasibility and complementarity of all three constraint families.
    """
    inst = check_instance(values, demands, budget, past, weights)
    z = check_linear(linear, inst)
    v, x, b, w = inst.values, inst.demands, inst.budget, inst.weights
    a, p, mu, nu = solution.allocation, solution.prices, solution.mu, solution.nu
    sigma = resource_scale(v, x, b)
    s = bias_utility(v, inst.past) + np.einsum("...nm,...nm->...n", v, a)
    included = s > TINY  # at the optimum exactly the agents in the objective have utility
    safe = np.where(s > 0, s, 1.0)[..., None]
    marginal = w[..., None] * v / safe * sigma[..., None, :]
    relative = np.maximum(marginal, 1.0)
    price_scale = np.maximum(relative, (p * sigma)[..., None, :])
    stationarity = (-marginal + (nu - mu + p[..., None, :] + z) * sigma[..., None, :]) / price_scale
    stationarity = np.where(included[..., None], np.abs(stationarity), 0.0)
    sig = sigma[..., None, :]
    slack_b = b - column_totals(a)
    parts = [
        stationarity.max(axis=(-2, -1)),
        (np.maximum(-a, 0) / sig).max(axis=(-2, -1)),
        (np.maximum(a - x, 0) / sig).max(axis=(-2, -1)),
        (np.maximum(-slack_b, 0) / sigma).max(axis=-1),
        (np.maximum(-np.minimum(mu, nu), 0) * sig).max(axis=(-2, -1)),
        (np.maximum(-p, 0) * sigma).max(axis=-1),
        (np.abs(mu * a) / relative).max(axis=(-2, -1)),
        (np.abs(nu * (x - a)) / relative).max(axis=(-2, -1)),
        np.abs(p * slack_b).max(axis=-1),
    ]
    return np.max(np.stack(parts), axis=0)
