"""Gradients of the PF allocation by implicit differentiation of its KKT system.

For stationarity ``F = -w v/s - mu + nu + price + z = 0`` (``z`` the optional linear term of
regularised PF, constant in ``a``) (``s_i = v_i . (a_i + past_i)``) and
the complementarity conditions ``mu a = 0``, ``nu (a - x) = 0``, ``price (sum_i a - b) = 0``,
the Jacobian ``J`` with respect to ``z = (a, mu, nu, price)`` has size ``3NM + M``. Given
``dl/da``, the adjoint ``g`` solves ``J^T g = (dl/da, 0, 0, 0)`` and ``dl/dtheta = -g^T dR/dtheta``::

    dl/dv_ik    = w_i g_ik / s_i - w_i (v_i . g_i)(a_ik + past_ik) / s_i^2
    dl/dpast_ik = -w_i (v_i . g_i) v_ik / s_i^2
    dl/dw_i     = (v_i . g_i) / s_i
    dl/dx_im    = nu_im g_nu,im
    dl/db_m     = price_m g_price,m
    dl/dz_ik    = -g_ik

(``g_i`` is agent i's block of ``g_a``). These are the corrected formulas of the RPF-Net spec
written for the unscaled stationarity condition. Multipliers and bounds are first
classified as active or not (a bound is active when its scaled multiplier exceeds its
scaled slack) and the inactive member of each pair is set to exactly zero. A row that is
then all zeros (a bound and its multiplier both zero) is replaced by the identity, which
is what the minimum-norm solution does with it; systems still singular after that (ties)
are solved by minimum-norm least squares. Agents left out of PF have zero gradients.

Most of that system is trivial: a variable at an active bound has ``g_a = 0``, an inactive
multiplier's adjoint follows from its own row, and an inactive price drops out. What is left
couples only the **free** entries (neither bound active) and the **active** prices::

    [H_FF  E^T] [g_F]   [dl/da_F]
    [E     0  ] [h  ] = [0      ]      (h_m = price_m g_price,m)

with ``H`` the objective's Hessian (rank one per agent, ``w_i v_i v_i^T / s_i^2``) and ``E``
the incidence of free entries and active resources: a few unknowns per instance instead of
``3NM + M`` (``_vjp_reduced``). The dense system is solved only for instances where this one is
singular or a variable has both bounds active (``_vjp_dense``); both give the same numbers.
"""
from __future__ import annotations

import numpy as np
import torch

from .pf import PFSolution, bias_utility, flatten_batch, resource_scale, solve_validated
from .pf_reference import check_linear
from .validation import Instance, check_instance

CHUNK_DOUBLES = 2**24  # memory bound of one reduced solve: instances * (NM + M)^2 <= this
DENSE_CHUNK = 256  # instances per dense solve: bounds memory at DENSE_CHUNK * (3NM + M)^2 doubles
SINGULAR_RATIO = 1e-11  # a reduced system with a smaller ratio of extreme singular values counts as singular


def _snap(primal: np.ndarray, dual: np.ndarray, scale: np.ndarray):
    """Zero the inactive member of each complementary pair (primal slack, multiplier)."""
    active = dual * scale > primal / scale
    return np.where(active, 0.0, primal), np.where(active, dual, 0.0)


def pf_vjp(values, demands, budget, past, weights, solution: PFSolution, grad_allocation, dense: bool = False):
    """Vector-Jacobian product of PF: ``dl/d(values, demands, budget, past, weights, linear)``.

    Inputs are validated arrays broadcast to full batch shapes: ``values, demands, past,
    grad_allocation (B..., N, M)``, ``budget (B..., M)``, ``weights (B..., N)``. The linear
    term itself is not needed: it enters the KKT system only through the solution.
    ``dense=True`` solves the whole ``(3NM + M)``-square system for every instance (the
    reference that the reduced system is tested and benchmarked against).
    """
    batch, (n, m) = np.shape(values)[:-2], np.shape(values)[-2:]
    v, x, past, g_out, a, mu, nu = (flatten_batch(np.asarray(t), 2) for t in (
        values, demands, past, grad_allocation, solution.allocation, solution.mu, solution.nu))
    b, w, price = (flatten_batch(np.asarray(t), 1) for t in (budget, weights, solution.prices))
    size = v.shape[0]
    out = [np.zeros_like(v), np.zeros_like(x), np.zeros_like(b), np.zeros_like(past), np.zeros_like(w), np.zeros_like(v)]
    chunk = max(1, CHUNK_DOUBLES // (n * m + m) ** 2)
    for start in range(0, size, chunk):
        sl = slice(start, min(start + chunk, size))
        parts = _vjp_chunk(v[sl], x[sl], b[sl], past[sl], w[sl], a[sl], mu[sl], nu[sl], price[sl], g_out[sl], dense)
        for dst, src in zip(out, parts):
            dst[sl] = src
    shapes = [(n, m), (n, m), (m,), (n, m), (n,), (n, m)]
    return tuple(o.reshape(batch + s) for o, s in zip(out, shapes))


def _vjp_chunk(v, x, b, past, w, a, mu, nu, price, g_out, dense: bool = False):
    """The vector-Jacobian product of a chunk: the reduced system, the dense one where it cannot
    serve (everywhere with ``dense``)."""
    sigma = resource_scale(v, x, b)
    sig = np.broadcast_to(sigma[:, None, :], v.shape)
    s = bias_utility(v, past + a)
    included = s > 0
    safe_s = np.where(included, s, 1.0)
    lower, mu_j = _snap(a, mu, sig)
    upper, nu_j = _snap(x - a, nu, sig)
    slack, price_j = _snap(b - a.sum(axis=1), price, sigma)
    rho = np.where(included, w / safe_s**2, 0.0)
    if dense:
        g_a, d_x, d_b, ok = np.zeros_like(v), np.zeros_like(v), np.zeros_like(b), np.zeros(len(v), dtype=bool)
    else:
        g_a, d_x, d_b, ok = _vjp_reduced(v, included, rho, lower, mu_j, upper, nu_j, price_j, g_out)
    parts = _outputs(v, past, w, a, included, safe_s, g_a, d_x, d_b)
    unsolved = np.flatnonzero(~ok)
    for start in range(0, len(unsolved), DENSE_CHUNK):
        rest = unsolved[start:start + DENSE_CHUNK]
        solved = _vjp_dense(v[rest], a[rest], past[rest], w[rest], included[rest], safe_s[rest], rho[rest],
                            lower[rest], mu_j[rest], upper[rest], nu_j[rest], slack[rest], price_j[rest], g_out[rest])
        for dst, src in zip(parts, solved):
            dst[rest] = src
    return parts


def _outputs(v, past, w, a, included, safe_s, g_a, d_x, d_b):
    """``dl/d(values, demands, budget, past, weights, linear)`` from the allocation adjoint ``g_a``."""
    vg = np.einsum("bnm,bnm->bn", v, g_a)
    ws = np.where(included, w / safe_s, 0.0)
    d_v = ws[..., None] * g_a - (ws * vg / safe_s)[..., None] * (a + past)
    d_past = -(ws * vg / safe_s)[..., None] * v
    d_w = np.where(included, vg / safe_s, 0.0)
    d_z = np.where(included[..., None], -g_a, 0.0)
    return [d_v, d_x, d_b, d_past, d_w, d_z]


def _vjp_reduced(v, included, rho, lower, mu_j, upper, nu_j, price_j, g_out):
    """Adjoint of the free entries and active prices only (module docstring), padded per chunk.

    Returns ``g_a (B, N, M)``, ``dl/dx (B, N, M)``, ``dl/db (B, M)`` and ``ok (B,)``: False where
    this system is singular or an entry has both bounds active (the dense system decides there).
    """
    size, n, m = v.shape
    inc = included[:, :, None]
    # A pair whose bound and multiplier are both zero acts as inactive in the dense system too.
    free = inc & ((lower > 0) | (mu_j == 0)) & ((upper > 0) | (nu_j == 0))
    ok = ~(inc & (mu_j > 0) & (nu_j > 0)).any(axis=(1, 2))
    active = price_j > 0  # (B, M)
    free_flat = free.reshape(size, n * m)
    n_free = free_flat.sum(axis=1)
    dim = n_free + active.sum(axis=1)
    width = max(int(dim.max(initial=0)), 1)
    pos_entry = np.cumsum(free_flat, axis=1) - 1  # (B, NM): row of each free entry
    pos_price = n_free[:, None] + np.cumsum(active, axis=1) - 1  # (B, M): row of each active price
    K = np.zeros((size, width, width))
    rhs = np.zeros((size, width))
    # Hessian blocks: rho_i v_ik v_il for free entries k, l of the same agent.
    pair = free[:, :, :, None] & free[:, :, None, :]  # (B, N, M, M)
    bi, ai, k, l = np.nonzero(pair)
    K[bi, pos_entry[bi, ai * m + k], pos_entry[bi, ai * m + l]] = rho[bi, ai] * v[bi, ai, k] * v[bi, ai, l]
    # Budget rows: a free entry of an active resource.
    bi, ai, k = np.nonzero(free & active[:, None, :])
    rows, cols = pos_entry[bi, ai * m + k], pos_price[bi, k]
    K[bi, rows, cols] = 1.0
    K[bi, cols, rows] = 1.0
    bi, ai, k = np.nonzero(free)
    rhs[bi, pos_entry[bi, ai * m + k]] = g_out[bi, ai, k]
    pad = np.arange(width)[None, :] >= dim[:, None]
    K[pad[:, :, None] & np.eye(width, dtype=bool)[None]] = 1.0
    K_t = torch.from_numpy(K)
    sol, info = torch.linalg.solve_ex(K_t, torch.from_numpy(rhs)[..., None])
    sol = sol[..., 0].numpy()
    singular_values = torch.linalg.svdvals(K_t).numpy()  # a tie can leave K singular only up to round-off
    ok &= (info.numpy() == 0) & np.isfinite(sol).all(axis=1) & (
        singular_values[:, -1] > SINGULAR_RATIO * singular_values[:, 0])
    g_a = np.zeros_like(v)
    g_a[bi, ai, k] = sol[bi, pos_entry[bi, ai * m + k]]
    h = np.where(active, np.take_along_axis(sol, np.where(active, pos_price, 0), axis=1), 0.0)
    hg = rho[..., None] * v * np.einsum("bnm,bnm->bn", v, g_a)[..., None]  # H g_a, rank one per agent
    d_x = np.where(inc & (nu_j > 0), g_out - hg - h[:, None, :], 0.0)
    return g_a, d_x, h, ok


def _vjp_dense(v, a, past, w, included, safe_s, rho, lower, mu_j, upper, nu_j, slack, price_j, g_out):
    """The whole ``(3NM + M)``-square adjoint system per instance (minimum-norm where singular)."""
    size, n, m = v.shape
    nm = n * m
    k = 3 * nm + m

    J = np.zeros((size, k, k))
    ia, imu, inu, ip = np.arange(nm), nm + np.arange(nm), 2 * nm + np.arange(nm), 3 * nm + np.arange(m)
    res = np.arange(nm) % m  # resource of each flat (i, m) entry
    agent = np.arange(nm) // m
    H = rho[:, :, None, None] * v[:, :, :, None] * v[:, :, None, :]  # (B, N, M, M)
    for i in range(n):
        J[:, i * m:(i + 1) * m, i * m:(i + 1) * m] = H[:, i]
    J[:, ia, imu] = -1.0
    J[:, ia, inu] = 1.0
    J[:, ia, ip[res]] = 1.0
    J[:, imu, ia] = mu_j.reshape(size, nm)
    J[:, imu, imu] = lower.reshape(size, nm)
    J[:, inu, ia] = nu_j.reshape(size, nm)
    J[:, inu, inu] = -upper.reshape(size, nm)
    J[:, ip[res], ia] = np.repeat(price_j[:, None, :], n, axis=1).reshape(size, nm)
    J[:, ip, ip] = -slack
    # Left-out agents are constants: their rows become identities.
    excluded = ~included[:, agent]  # (B, NM)
    inst, entry = np.nonzero(excluded)
    for block in (ia, imu, inu):
        J[inst, block[entry], :] = 0.0
        J[inst, block[entry], block[entry]] = 1.0
    zero_rows = ~np.any(J != 0.0, axis=2)
    bi, ri = np.nonzero(zero_rows)
    J[bi, ri, ri] = 1.0

    rhs = np.zeros((size, k))
    rhs[:, ia] = np.where(excluded, 0.0, g_out.reshape(size, nm))
    g = _solve_transposed(J, rhs)
    g_a = np.where(excluded, 0.0, g[:, ia]).reshape(size, n, m)
    d_x = nu_j * g[:, inu].reshape(size, n, m)
    d_b = price_j * g[:, ip]
    return _outputs(v, past, w, a, included, safe_s, g_a, d_x, d_b)


def _solve_transposed(J: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve ``J^T g = rhs`` per instance; minimum-norm least squares where ``J`` is singular."""
    A = torch.from_numpy(np.ascontiguousarray(np.swapaxes(J, 1, 2)))
    B = torch.from_numpy(rhs)[..., None]
    g, info = torch.linalg.solve_ex(A, B)
    bad = (info != 0) | ~torch.isfinite(g).all(dim=(1, 2))
    if bad.any():
        g[bad] = torch.linalg.lstsq(A[bad], B[bad], driver="gelsd").solution
    return g[..., 0].numpy()


class ProportionalFairnessFunction(torch.autograd.Function):
    """``allocation = PF(values, demands, budget, past, weights, linear)`` with implicit-function gradients.

    All inputs are float64 tensors already validated and broadcast to full shapes ``(B..., N, M)``,
    ``(B..., M)`` and ``(B..., N)``; use :func:`proportional_fairness_torch`, which does both.
    """

    @staticmethod
    def forward(ctx, values, demands, budget, past, weights, linear):
        arrays = [t.detach().cpu().numpy() for t in (values, demands, budget, past, weights)]
        solution = solve_validated(Instance(*arrays), linear.detach().cpu().numpy())
        ctx.arrays = arrays
        ctx.solution = solution
        return torch.from_numpy(solution.allocation).to(dtype=values.dtype, device=values.device)

    @staticmethod
    def backward(ctx, grad_allocation):
        grads = pf_vjp(*ctx.arrays, ctx.solution, grad_allocation.detach().cpu().numpy())
        return tuple(torch.from_numpy(g).to(dtype=grad_allocation.dtype, device=grad_allocation.device)
                     for g in grads)


def proportional_fairness_torch(values, demands, budget, past=None, weights=None, linear=None) -> torch.Tensor:
    """Differentiable PF on torch tensors (leading batch dimensions broadcast).

    Shapes as :func:`mechzoo.mechanisms.proportional_fairness` (``linear (..., N, M) >= 0`` the
    optional linear term of regularised PF); returns ``allocation (..., N, M)``. Gradients
    flow to every input that requires them.
    """
    values, demands, budget = (torch.as_tensor(t, dtype=torch.float64) for t in (values, demands, budget))
    n, m = values.shape[-2:]
    past = torch.zeros(n, m, dtype=torch.float64) if past is None else torch.as_tensor(past, dtype=torch.float64)
    weights = torch.ones(n, dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
    linear = torch.zeros(n, m, dtype=torch.float64) if linear is None else torch.as_tensor(linear, dtype=torch.float64)
    inst = check_instance(*(t.detach().cpu().numpy() for t in (values, demands, budget, past, weights)))
    check_linear(linear.detach().cpu().numpy(), inst)
    batch = inst.batch_shape
    return ProportionalFairnessFunction.apply(
        values.expand(batch + (n, m)), demands.expand(batch + (n, m)), budget.expand(batch + (m,)),
        past.expand(batch + (n, m)), weights.expand(batch + (n,)), linear.expand(batch + (n, m)),
    )
