"""Compiled interior-point kernel for proportional fairness (one instance per call, batched loop).

Problem (eq. 3 of the SAMA paper, with weights and a bias)::

    min_a  -sum_i w_i log(c_i + v_i . a_i)   s.t.  0 <= a <= x,  sum_i a_{i,m} <= b_m

where ``c_i = v_i . past_i``. A primal-dual interior-point method with Mehrotra's
predictor-corrector. The Newton system is ``(P + D^T S_b D) da = r`` with ``P`` block
diagonal, one ``diag + rank-one`` block per agent, and ``D = [I_M ... I_M]``; Woodbury's
identity reduces it to one ``K x K`` positive-definite solve per iteration (K = number of
contested resources), so an iteration costs ``O(N M + M^3)``.

Before the interior-point loop the instance is simplified and rescaled:
 * entries with zero value get zero (they cannot change the objective);
 * agents with ``v_i . x_i = 0`` and ``c_i = 0`` are left out and get zero;
 * a resource whose total demand fits in its budget is not contested: everyone gets its
   demand and its price is 0; a resource with zero budget gives everyone 0;
 * each contested resource is measured in units of its largest effective demand and each
   agent's utility in units of its largest attainable utility, so the loop sees numbers of
   order one whatever the budget's magnitude.
After the loop, the duals of entries fixed by these rules are set from the stationarity
condition, so ``(a, price, mu, nu)`` satisfies the KKT system of the original problem.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

STEP_TO_BOUNDARY = 0.995
STALL_ITERATIONS = 5
STALL_FACTOR = 1e3


@njit(cache=True)
def _cholesky_solve(S, t):
    """Solve ``S y = t`` for a small symmetric positive-definite ``S``."""
    k = t.shape[0]
    L = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1):
            acc = S[i, j]
            for p in range(j):
                acc -= L[i, p] * L[j, p]
            if i == j:
                L[i, i] = np.sqrt(max(acc, 1e-300))
            else:
                L[i, j] = acc / L[j, j]
    y = np.empty(k)
    for i in range(k):
        acc = t[i]
        for p in range(i):
            acc -= L[i, p] * y[p]
        y[i] = acc / L[i, i]
    for i in range(k - 1, -1, -1):
        acc = y[i]
        for p in range(i + 1, k):
            acc -= L[p, i] * y[p]
        y[i] = acc / L[i, i]
    return y


@njit(cache=True)
def _block_inverse(dinv, vh, rho):
    """Blocks of ``P^{-1}`` for ``P_i = diag(1/dinv_i) + rho_i v_i v_i^T``, shape ``(n, k, k)``.

    Sherman-Morrison written without the cancellation of ``d - coef d^2 v^2`` that ruins the
    entries of free variables (huge ``d``) near the solution.
    """
    n, k = vh.shape
    out = np.empty((n, k, k))
    for i in range(n):
        dv2 = dinv[i] * vh[i] * vh[i]
        denom = 1.0 + rho[i] * dv2.sum()
        for j in range(k):
            others = 0.0
            for l in range(k):
                if l != j:
                    others += dv2[l]
            out[i, j, j] = dinv[i, j] * (1.0 + rho[i] * others) / denom
            for l in range(k):
                if l != j:
                    out[i, j, l] = -rho[i] * dinv[i, j] * vh[i, j] * dinv[i, l] * vh[i, l] / denom
    return out


@njit(cache=True)
def _apply_blocks(blocks, r):
    """``out[i] = blocks[i] @ r[i]`` for ``blocks (n, k, k)``, ``r (n, k)``."""
    n, k = r.shape
    out = np.zeros((n, k))
    for i in range(n):
        for j in range(k):
            acc = 0.0
            for l in range(k):
                acc += blocks[i, j, l] * r[i, l]
            out[i, j] = acc
    return out


@njit(cache=True)
def _newton_direction(blocks, sl_over_lam, rhs, e):
    """Solve ``P da + D^T dlam = rhs``, ``D da - diag(sl/lam) dlam = e`` by Woodbury.

    ``blocks (n, k, k)`` are the blocks of ``P^{-1}``. Eliminating ``da`` gives the ``k x k``
    system ``(D P^{-1} D^T + diag(sl/lam)) dlam = D P^{-1} rhs - e``, which stays well
    conditioned as budget slacks vanish. Returns ``(da (n, k), dlam (k,))``.
    """
    S = np.diag(sl_over_lam) + blocks.sum(axis=0)
    dlam = _cholesky_solve(S, _apply_blocks(blocks, rhs).sum(axis=0) - e)
    return _apply_blocks(blocks, rhs - dlam[None, :]), dlam


@njit(cache=True)
def _max_step(z, dz):
    """Largest ``alpha`` (capped at 1e300) keeping ``z + alpha dz >= 0`` elementwise."""
    alpha = 1e300
    for idx in range(z.size):
        if dz.flat[idx] < 0.0:
            alpha = min(alpha, -z.flat[idx] / dz.flat[idx])
    return alpha


@njit(cache=True)
def _interior_point(vh, xh, act, bh, ch, w, tol, max_iter):
    """Primal-dual interior point on the scaled, contested sub-problem.

    Shapes ``(n, k)`` for ``vh, xh, act`` (1.0 on free entries, 0.0 on entries fixed at 0),
    ``bh (k,)``, ``ch, w (n,)``. Utilities ``s_i = c_i + v_i . a_i`` are variables of their own
    with multipliers ``eta_i`` and the optimality condition ``eta_i s_i = w_i`` is linearised
    in primal-dual form, like a complementarity condition: the log objective then behaves
    like a barrier and a long step cannot collapse an agent's utility. The slacks of
    ``a <= x`` (``up``) and of the budget (``sl``) are variables too: recomputed as
    differences they would lose their relative precision next to a tight bound.
    Returns ``(a, lam, mu, nu, converged, iterations)``.
    """
    n, k = vh.shape
    theta = np.minimum(0.5, 0.5 * bh / xh.sum(axis=0))
    a = xh * theta[None, :]
    off = 1.0 - act  # gives fixed entries unit slacks and zero duals, so they never bind
    up = xh - a + off
    sl = bh - a.sum(axis=0)
    s = ch + (vh * a).sum(axis=1)
    eta = w / s
    mu = act.copy()
    nu = act * np.minimum(1.0, 1.0 / up)  # demands far above the budget: keep nu * up near 1
    lam = np.ones(k)
    n_comp = 2.0 * act.sum() + k
    best = np.inf
    stalled = 0
    for it in range(max_iter):
        lo = a + off
        r_a = (-eta[:, None] * vh - mu + nu + lam[None, :]) * act
        r_e = s - ch - (vh * a).sum(axis=1)
        r_up = (a + up - xh - off) * act
        r_sl = a.sum(axis=0) + sl - bh
        c_eta = eta * s - w
        c_mu = mu * lo
        c_nu = nu * up
        c_lam = lam * sl
        worst = max(np.abs(r_a).max(), np.abs(r_e).max(), np.abs(r_up).max(), np.abs(r_sl).max(),
                    np.abs(c_eta).max(), c_mu.max(), c_nu.max(), c_lam.max())
        if worst <= tol:
            return a, lam, mu, nu, True, it
        # Round-off can stop progress just above `tol` on large instances: accept a stall
        # within STALL_FACTOR of it, otherwise keep going until max_iter.
        stalled = stalled + 1 if worst > 0.5 * best else 0
        best = min(best, worst)
        if stalled >= STALL_ITERATIONS and worst <= STALL_FACTOR * tol:
            return a, lam, mu, nu, True, it
        gap = (c_mu.sum() + c_nu.sum() + c_lam.sum()) / n_comp
        dinv = act / (mu / lo + nu / up + off)
        blocks = _block_inverse(dinv, vh, eta / s)
        sl_over_lam = sl / lam
        # Predictor (affine scaling), then corrector (centring plus second-order terms; none
        # for eta * s = w, whose correction can drive eta through zero and stall the method).
        r_eta, r_mu, r_nu, r_lam = c_eta, c_mu, c_nu, c_lam
        for corrector in range(2):
            rhs = (-r_a + vh * ((-r_eta + eta * r_e) / s)[:, None]
                   - r_mu / lo + (r_nu - nu * r_up) / up) * act
            da, dlam = _newton_direction(blocks, sl_over_lam, rhs, r_lam / lam - r_sl)
            ds = (vh * da).sum(axis=1) - r_e
            deta = (-r_eta - eta * ds) / s
            dup = (-r_up - da) * act
            dsl = -r_sl - da.sum(axis=0)
            dmu = (-r_mu - mu * da) / lo
            dnu = (-r_nu - nu * dup) / up
            step = min(_max_step(lo, da), _max_step(up, dup), _max_step(sl, dsl), _max_step(s, ds),
                       _max_step(eta, deta), _max_step(mu, dmu), _max_step(nu, dnu), _max_step(lam, dlam))
            if corrector == 0:
                alpha = min(1.0, step)
                gap_aff = (((lo + alpha * da) * (mu + alpha * dmu)).sum()
                           + ((up + alpha * dup) * (nu + alpha * dnu)).sum()
                           + ((sl + alpha * dsl) * (lam + alpha * dlam)).sum()) / n_comp
                target = gap * (gap_aff / gap) ** 3
                r_mu = c_mu + da * dmu - target * act
                r_nu = c_nu + dup * dnu - target * act
                r_lam = c_lam + dsl * dlam - target
        alpha = min(1.0, STEP_TO_BOUNDARY * step)
        a = a + alpha * da
        s = s + alpha * ds
        eta = eta + alpha * deta
        up = up + alpha * dup
        sl = sl + alpha * dsl
        mu = mu + alpha * dmu
        nu = nu + alpha * dnu
        lam = lam + alpha * dlam
    return a, lam, mu, nu, False, max_iter


@njit(cache=True)
def solve_instance(v, x, b, c, w, tol, max_iter, a_out, price_out, mu_out, nu_out):
    """Solve one PF instance; writes ``a, price, mu, nu`` and returns ``(converged, iterations)``.

    Shapes: ``v, x (N, M)``, ``b (M,)``, ``c (N,)`` (bias utility ``v_i . past_i``), ``w (N,)``.
    ``tol`` bounds the scaled stationarity residual and every scaled complementarity product.
    """
    n, m = v.shape
    a_out[:, :] = 0.0
    price_out[:] = 0.0
    mu_out[:, :] = 0.0
    nu_out[:, :] = 0.0
    # Effective demand: zero-value entries and left-out agents demand nothing.
    xe = np.where(v > 0.0, x, 0.0)
    included = ((v * xe).sum(axis=1) > 0.0) | (c > 0.0)
    for i in range(n):
        if not included[i]:
            xe[i, :] = 0.0
    contested = np.zeros(m, dtype=np.bool_)
    sigma = np.ones(m)
    for j in range(m):
        if xe[:, j].sum() <= b[j]:
            a_out[:, j] = xe[:, j]
        elif b[j] > 0.0:
            contested[j] = True
            sigma[j] = np.minimum(xe[:, j], b[j]).max()
    cols = np.nonzero(contested)[0]
    k = cols.shape[0]
    converged = True
    iters = 0
    if k > 0:
        # Constant part of each utility (bias plus uncontested resources) and the utility scale.
        offset = c + (v * a_out).sum(axis=1)
        kappa = offset.copy()
        vh = np.zeros((n, k))
        xh = np.zeros((n, k))
        act = np.zeros((n, k))
        for q in range(k):
            j = cols[q]
            for i in range(n):
                kappa[i] += v[i, j] * min(xe[i, j], b[j])
        kappa = np.where(included, kappa, 1.0)
        for q in range(k):
            j = cols[q]
            for i in range(n):
                if xe[i, j] > 0.0:
                    act[i, q] = 1.0
                    vh[i, q] = v[i, j] * sigma[j] / kappa[i]
                    xh[i, q] = xe[i, j] / sigma[j]
        bh = b[cols] / sigma[cols]
        ch = np.where(included, offset / kappa, 1.0)
        ah, lam, mu, nu, converged, iters = _interior_point(vh, xh, act, bh, ch, w, tol, max_iter)
        for q in range(k):
            j = cols[q]
            price_out[j] = lam[q] / sigma[j]
            for i in range(n):
                a_out[i, j] = ah[i, q] * sigma[j]
                mu_out[i, j] = mu[i, q] / sigma[j]
                nu_out[i, j] = nu[i, q] / sigma[j]
    # Duals of fixed entries from stationarity: marginal utility minus price.
    s = c + (v * a_out).sum(axis=1)
    for j in range(m):
        if b[j] == 0.0:
            for i in range(n):
                if included[i]:
                    price_out[j] = max(price_out[j], w[i] * v[i, j] / s[i])
        for i in range(n):
            if not included[i]:
                continue
            fixed = not contested[j] or xe[i, j] == 0.0
            if fixed:
                gain = w[i] * v[i, j] / s[i] - price_out[j]
                if a_out[i, j] >= x[i, j]:
                    nu_out[i, j] = max(gain, 0.0)
                    mu_out[i, j] = max(-gain, 0.0)
                else:
                    mu_out[i, j] = max(-gain, 0.0)
    return converged, iters


@njit(parallel=True, cache=True)
def solve_batch(v, x, b, c, w, tol, max_iter, a, price, mu, nu, converged, iterations):
    """Solve a flat batch of instances in parallel; arrays have a leading batch axis."""
    for t in prange(v.shape[0]):
        conv, its = solve_instance(v[t], x[t], b[t], c[t], w[t], tol, max_iter, a[t], price[t], mu[t], nu[t])
        converged[t] = conv
        iterations[t] = its
