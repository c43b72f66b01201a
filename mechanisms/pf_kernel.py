"""Compiled interior-point kernel for proportional fairness (one instance per call, batched loop).

Problem (eq. 3 of the SAMA paper, with weights and a bias)::

    min_a  -sum_i w_i log(c_i + v_i . a_i) + <z, a>   s.t.  0 <= a <= x,  sum_i a_{i,m} <= b_m

where ``c_i = v_i . past_i`` and ``z >= 0`` is an optional linear term (the regularised PF
layer of RPF-Net; ``z = 0`` is plain PF). A primal-dual interior-point method with Mehrotra's
predictor-corrector. The Newton system is ``(P + D^T S_b D) da = r`` with ``P`` block
diagonal, one ``diag + rank-one`` block per agent, and ``D = [I_M ... I_M]``; Woodbury's
identity reduces it to one ``K x K`` positive-definite solve per iteration (K = number of
contested resources), so an iteration costs ``O(N M + M^3)``. The loop visits only the
free entries, stored flat and grouped by agent. An instance with a single contested resource
skips the interior point: its one price is the root of a monotone scalar equation
(:func:`_single_resource`).

Before the interior-point loop the instance is simplified and rescaled:
 * entries with zero value get zero (they cannot change the objective);
 * agents with ``c_i = 0`` and ``sum_m v_im min(x_im, b_m) = 0`` (no positive utility is
   attainable) are left out and get zero;
 * a resource whose total demand fits in its budget and carries no linear term on a
   demanded entry is not contested: everyone gets its demand and its price is 0; a
   resource with zero budget gives everyone 0;
 * each contested resource is measured in units of its largest effective demand and each
   agent's utility in units of its largest attainable utility, so the loop sees numbers of
   order one whatever the budget's magnitude.
After the loop, the duals of entries fixed by these rules are set from the stationarity
condition, so ``(a, price, mu, nu)`` satisfies the KKT system of the original problem.
"""
from __future__ import annotations

import numpy as np
import numba
from numba import njit, prange

STEP_TO_BOUNDARY = 0.995
STALL_ITERATIONS = 5
STALL_FACTOR = 1e3
CAUTIOUS_CENTERING = 0.1
STALL_ABORT = 15  # iterations without halving the residual before giving up on a run
PARALLEL_MIN_BATCH = 64
NEGLIGIBLE_DEMAND = 1e-12  # of the resource's scale: smaller demands are granted in full
NEGLIGIBLE_WORTH = 1e-12  # of every agent's utility: such resources are shared at price 0
AMBIGUOUS = 1e-9
DEGENERATE_TOL = 1e-18


@njit(cache=True, error_model="numpy", inline="always")
def _cholesky_factor(S, L):
    """Lower Cholesky factor ``L`` of a small symmetric positive-definite ``S`` (k x k)."""
    k = S.shape[0]
    for i in range(k):
        for j in range(i + 1):
            acc = S[i, j]
            for p in range(j):
                acc -= L[i, p] * L[j, p]
            if i == j:
                L[i, i] = np.sqrt(max(acc, 1e-300))
            else:
                L[i, j] = acc / L[j, j]


@njit(cache=True, error_model="numpy", inline="always")
def _cholesky_solve(L, t, y):
    """Solve ``L L^T y = t`` given the Cholesky factor ``L``."""
    k = t.shape[0]
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


@njit(cache=True, error_model="numpy", inline="always")
def _block_inverse(ptr, dinv, vh, rho, before, diag, u, coupling):
    """Agent ``i``'s block of ``P^{-1}`` for ``P_i = diag(1/dinv_i) + rho_i v_i v_i^T``, in the
    Sherman-Morrison form ``diag(diag_i) - coupling_i (u_i u_i^T - diag(u_i^2))``.

    Entries are flat (agent ``i`` owns ``ptr[i]:ptr[i + 1]``). Writes ``diag, u`` (``u = dinv
    * v``) and ``coupling (n,)``. The diagonal is written without the cancellation of
    ``d - coupling d^2 v^2`` that ruins the entries of free variables (huge ``d``) near the
    solution: it uses the sum of the *other* entries' ``d v^2`` (prefix plus suffix sums;
    ``before`` is scratch of the entries' length).
    """
    for i in range(ptr.size - 1):
        total = 0.0
        for q in range(ptr[i], ptr[i + 1]):
            before[q] = total
            u[q] = dinv[q] * vh[q]
            total += u[q] * vh[q]
        inv_denom = 1.0 / (1.0 + rho[i] * total)
        coupling[i] = rho[i] * inv_denom
        after = 0.0
        for q in range(ptr[i + 1] - 1, ptr[i] - 1, -1):
            diag[q] = dinv[q] * (1.0 + rho[i] * (before[q] + after)) * inv_denom
            after += u[q] * vh[q]


@njit(cache=True, error_model="numpy", inline="always")
def _factor_reduced_system(ptr, col, diag, u, coupling, sl_over_lam, S, L):
    """Cholesky factor ``L`` of the ``k x k`` matrix ``S = D P^{-1} D^T + diag(sl/lam)``
    (lower triangle only: an agent's entries are in increasing resource order); the
    predictor and the corrector of an iteration share it."""
    k = sl_over_lam.size
    for c in range(k):
        for c2 in range(c + 1):
            S[c, c2] = 0.0
        S[c, c] = sl_over_lam[c]
    for i in range(ptr.size - 1):
        for q in range(ptr[i], ptr[i + 1]):
            S[col[q], col[q]] += diag[q]
            g = coupling[i] * u[q]
            for q2 in range(ptr[i], q):
                S[col[q], col[q2]] -= g * u[q2]
    _cholesky_factor(S, L)


@njit(cache=True, error_model="numpy", inline="always")
def _apply_block_inverse(ptr, col, diag, u, coupling, r, shift, before, out):
    """``out = P^{-1} (r - D^T shift)`` agent by agent (``shift (k,)``); the off-diagonal
    sums are taken over the other entries directly (prefix plus suffix), never as a total
    minus the own term."""
    for i in range(ptr.size - 1):
        total = 0.0
        for q in range(ptr[i], ptr[i + 1]):
            before[q] = total
            total += u[q] * (r[q] - shift[col[q]])
        after = 0.0
        for q in range(ptr[i + 1] - 1, ptr[i] - 1, -1):
            rq = r[q] - shift[col[q]]
            out[q] = diag[q] * rq - coupling[i] * u[q] * (before[q] + after)
            after += u[q] * rq


@njit(cache=True, error_model="numpy", inline="always")
def _newton_direction(ptr, col, diag, u, coupling, L, rhs, e, t, before, dlam, da):
    """Solve ``P da + D^T dlam = rhs``, ``D da - diag(sl/lam) dlam = e`` by Woodbury.

    Eliminating ``da`` gives ``S dlam = D P^{-1} rhs - e`` with ``S`` factored by
    :func:`_factor_reduced_system` (``L``), which stays well conditioned as budget slacks
    vanish. Writes ``da`` (flat entries; also used as scratch) and ``dlam (k,)``.
    """
    k = e.size
    for c in range(k):
        t[c] = -e[c]
        dlam[c] = 0.0  # a zero shift for the first pass, which computes P^{-1} rhs
    _apply_block_inverse(ptr, col, diag, u, coupling, rhs, dlam, before, da)
    for q in range(ptr[ptr.size - 1]):
        t[col[q]] += da[q]
    _cholesky_solve(L, t, dlam)
    _apply_block_inverse(ptr, col, diag, u, coupling, rhs, dlam, before, da)


@njit(cache=True, error_model="numpy", inline="always")
def _max_step(z, dz, alpha):
    """Largest step ``<= alpha`` keeping ``z + step * dz >= 0`` elementwise."""
    for idx in range(z.size):
        if dz[idx] < 0.0:
            alpha = min(alpha, -z[idx] / dz[idx])
    return alpha


N_ENTRY_FIELDS = 26  # flat arrays of the free entries in the interior point
N_MAT_FIELDS = 7  # (n, m) arrays: the interior point's a, mu, nu, and zh, xe, vh, xh of solve_instance
N_VEC_FIELDS = 21  # vectors of length n or k
N_AUX_FIELDS = 8  # set-up vectors of solve_instance


@njit(cache=True, error_model="numpy")
def make_workspace(n, m):
    """Buffers for one instance of size ``(n, m)``, reused across a batch: allocation would
    otherwise dominate these small solves and serialise the threads on the allocator."""
    size = max(n, m)
    return (np.zeros((N_MAT_FIELDS, n * m)), np.zeros((N_VEC_FIELDS, size)), np.zeros((2, m * m)),
            np.zeros((N_AUX_FIELDS, size)), np.zeros((3, n * m + n + m), dtype=np.bool_),
            np.zeros(m, dtype=np.int64), np.zeros((N_ENTRY_FIELDS, n * m)),
            np.zeros((2, n * m + 1), dtype=np.int64))


@njit(cache=True, error_model="numpy")
def _view(mat, row, n, k):
    """Row ``row`` of a workspace matrix as a contiguous ``(n, k)`` array."""
    return mat[row, :n * k].reshape((n, k))


@njit(cache=True, error_model="numpy", inline="always")
def _ambiguous(a, mu, up, nu, sl, lam):
    """Whether some bound and its multiplier are both still above AMBIGUOUS.

    That happens at degenerate optima (a bound that binds with a zero multiplier), where
    the iterates approach the solution only like the square root of the complementarity
    products: the method then keeps going down to DEGENERATE_TOL.
    """
    for c in range(sl.size):
        if min(sl[c], lam[c]) > AMBIGUOUS:
            return True
    for q in range(a.size):
        if min(a[q], mu[q]) > AMBIGUOUS or min(up[q], nu[q]) > AMBIGUOUS:
            return True
    return False


@njit(cache=True, error_model="numpy")
def _interior_point(vh2, xh2, zh2, act, bh, ch, w, tol, max_iter, work, cautious):
    """Primal-dual interior point on the scaled, contested sub-problem.

    Shapes ``(n, k)`` for ``vh2, xh2, zh2, act`` (``zh2`` the scaled linear term; ``act`` True
    on free entries, False on entries fixed at 0),
    ``bh (k,)``, ``ch, w (n,)``. Utilities ``s_i = c_i + v_i . a_i`` are variables of their own
    with multipliers ``eta_i`` and the optimality condition ``eta_i s_i = w_i`` is linearised
    in primal-dual form, like a complementarity condition: the log objective then behaves
    like a barrier and a long step cannot collapse an agent's utility. The slacks of
    ``a <= x`` (``up``) and of the budget (``sl``) are variables too: recomputed as
    differences they would lose their relative precision next to a tight bound.
    The loop works on the free entries only, stored flat and grouped by agent (agent ``i``
    owns entries ``ptr[i]:ptr[i + 1]``, resource ``col[q]``): skipping fixed entries by a
    test on every entry costs a mispredicted branch on a good share of them. Loops write into
    buffers allocated once, since allocation would dominate the cost of these small iterations.
    ``work`` is the buffer tuple of :func:`make_workspace`; the returned arrays are views of it.
    ``cautious`` is the fallback for the rare instances where Mehrotra's steps cycle (a flat
    objective next to a bound): it centres towards a fixed fraction of the gap without
    second-order terms and puts ``eta`` back on ``w / s`` after every step.
    Near the solution the fraction of the step to the boundary grows from ``STEP_TO_BOUNDARY``
    towards 1 (``1 - sqrt(gap)``): a fixed fraction would cut the residual by only
    ``1 - STEP_TO_BOUNDARY`` per iteration at the end (about one iteration in nine saved on
    10 x 3 instances; ``1 - gap`` saves a little more on average, but then a few instances
    need 20 to 40 iterations).
    Returns ``(a, lam, mu, nu, converged, iterations)`` with ``(n, k)`` arrays (0 on fixed entries).
    """
    n, k = vh2.shape
    mat, vec, small, ent, index = work[0], work[1], work[2], work[6], work[7]
    col, ptr = index[0], index[1, :n + 1]
    n_free = 0
    for i in range(n):
        ptr[i] = n_free
        for c in range(k):
            if act[i, c]:
                col[n_free] = c
                ent[22, n_free] = vh2[i, c]
                ent[23, n_free] = xh2[i, c]
                ent[24, n_free] = zh2[i, c]
                n_free += 1
    ptr[n] = n_free
    col = col[:n_free]
    (a, up, mu, nu, r_a, r_up, c_mu, c_nu, q_mu, q_nu, da, dup, dmu, dnu, dinv, rhs,
     inv_a, inv_up, inv_mu, inv_nu, diag, u, vh, xh, zh, before) = (
        ent[0, :n_free], ent[1, :n_free], ent[2, :n_free], ent[3, :n_free], ent[4, :n_free],
        ent[5, :n_free], ent[6, :n_free], ent[7, :n_free], ent[8, :n_free], ent[9, :n_free],
        ent[10, :n_free], ent[11, :n_free], ent[12, :n_free], ent[13, :n_free], ent[14, :n_free],
        ent[15, :n_free], ent[16, :n_free], ent[17, :n_free], ent[18, :n_free], ent[19, :n_free],
        ent[20, :n_free], ent[21, :n_free], ent[22, :n_free], ent[23, :n_free], ent[24, :n_free],
        ent[25, :n_free])  # before: scratch of _block_inverse and _newton_direction
    s, eta, r_e, c_eta, ds, deta, rho = vec[0, :n], vec[1, :n], vec[2, :n], vec[3, :n], vec[4, :n], vec[5, :n], vec[6, :n]
    sl, lam, r_sl, c_lam, q_lam = vec[7, :k], vec[8, :k], vec[9, :k], vec[10, :k], vec[11, :k]
    dsl, dlam, sl_over_lam, e, t = vec[12, :k], vec[13, :k], vec[14, :k], vec[15, :k], vec[16, :k]
    inv_s, coupling, used, theta = vec[17, :n], vec[18, :n], vec[19, :k], vec[20, :k]
    S, L = small[0, :k * k].reshape((k, k)), small[1, :k * k].reshape((k, k))
    # Strictly interior start: half the demand, or less where the budget needs it.
    for c in range(k):
        theta[c] = 0.0  # total demand of the resource, for now
        used[c] = 0.0
    for q in range(n_free):
        theta[col[q]] += xh[q]
    for c in range(k):
        theta[c] = min(0.5, 0.5 * bh[c] / theta[c])  # the share of each demand taken
        lam[c] = 1.0
    for q in range(n_free):
        a[q] = theta[col[q]] * xh[q]
        up[q] = xh[q] - a[q]
        mu[q] = 1.0
        nu[q] = min(1.0, 1.0 / up[q])  # demands far above the budget: nu * up near 1
        used[col[q]] += a[q]
    for c in range(k):
        sl[c] = bh[c] - used[c]
    n_comp = float(k + 2 * n_free)
    for i in range(n):
        s[i] = ch[i]
        for q in range(ptr[i], ptr[i + 1]):
            s[i] += vh[q] * a[q]
        eta[i] = w[i] / s[i]
    best = np.inf
    stalled = 0
    converged = False
    iterations = max_iter
    for it in range(max_iter):
        worst = 0.0
        gap = 0.0
        probe = 0.0  # sums every residual: not finite iff some iterate is not
        for c in range(k):
            r_sl[c] = sl[c] - bh[c]
            c_lam[c] = lam[c] * sl[c]
            gap += c_lam[c]
            worst = max(worst, c_lam[c])
        for i in range(n):
            r_e[i] = s[i] - ch[i]
            c_eta[i] = eta[i] * s[i] - w[i]
            worst = max(worst, abs(c_eta[i]))
            for q in range(ptr[i], ptr[i + 1]):
                c = col[q]
                r_e[i] -= vh[q] * a[q]
                r_sl[c] += a[q]
                r_a[q] = -eta[i] * vh[q] - mu[q] + nu[q] + lam[c] + zh[q]
                r_up[q] = a[q] + up[q] - xh[q]
                c_mu[q] = mu[q] * a[q]
                c_nu[q] = nu[q] * up[q]
                gap += c_mu[q] + c_nu[q]
                probe += r_a[q] + r_up[q]
                worst = max(worst, abs(r_a[q]), abs(r_up[q]), c_mu[q], c_nu[q])
            worst = max(worst, abs(r_e[i]))
            probe += r_e[i] + c_eta[i]
        for c in range(k):
            worst = max(worst, abs(r_sl[c]))
            probe += r_sl[c]
        if not np.isfinite(probe + gap):
            iterations = it  # broke down: the caller falls back to the reference
            break
        if worst <= tol and (worst <= DEGENERATE_TOL or not _ambiguous(a, mu, up, nu, sl, lam)):
            converged, iterations = True, it
            break
        # Round-off can stop progress just above `tol` on large instances: accept a stall
        # within STALL_FACTOR of it, otherwise keep going until max_iter.
        stalled = stalled + 1 if worst > 0.5 * best else 0
        best = min(best, worst)
        if stalled >= STALL_ITERATIONS and worst <= STALL_FACTOR * tol:
            converged, iterations = True, it
            break
        if stalled >= STALL_ABORT:
            iterations = it
            break
        gap /= n_comp
        # Reciprocals shared by both Newton directions and their ratio tests: divisions are
        # the dearest operations of an iteration.
        for i in range(n):
            inv_s[i] = 1.0 / s[i]
            rho[i] = eta[i] * inv_s[i]
        for q in range(n_free):
            inv_a[q] = 1.0 / a[q]
            inv_up[q] = 1.0 / up[q]
            inv_mu[q] = 1.0 / mu[q]
            inv_nu[q] = 1.0 / nu[q]
            dinv[q] = 1.0 / (mu[q] * inv_a[q] + nu[q] * inv_up[q])
        _block_inverse(ptr, dinv, vh, rho, before, diag, u, coupling)
        for c in range(k):
            sl_over_lam[c] = sl[c] / lam[c]
        _factor_reduced_system(ptr, col, diag, u, coupling, sl_over_lam, S, L)
        # Predictor (affine scaling), then corrector (centring plus second-order terms; none
        # for eta * s = w, whose correction can drive eta through zero and stall the method).
        q_mu[:] = c_mu
        q_nu[:] = c_nu
        q_lam[:] = c_lam
        step = 1.0
        for corrector in range(2):
            for i in range(n):
                coef = (-c_eta[i] + eta[i] * r_e[i]) * inv_s[i]
                for q in range(ptr[i], ptr[i + 1]):
                    rhs[q] = (-r_a[q] + vh[q] * coef - q_mu[q] * inv_a[q]
                              + (q_nu[q] - nu[q] * r_up[q]) * inv_up[q])
            for c in range(k):
                e[c] = q_lam[c] / lam[c] - r_sl[c]
            _newton_direction(ptr, col, diag, u, coupling, L, rhs, e, t, before, dlam, da)
            # Ratio test on the largest relative decrease ``-dz / z`` (the step is its inverse).
            shrink = 0.0
            for c in range(k):
                dsl[c] = -r_sl[c]
            for i in range(n):
                ds[i] = -r_e[i]
                for q in range(ptr[i], ptr[i + 1]):
                    ds[i] += vh[q] * da[q]
                    dsl[col[q]] -= da[q]
                    dup[q] = -r_up[q] - da[q]
                    dmu[q] = (-q_mu[q] - mu[q] * da[q]) * inv_a[q]
                    dnu[q] = (-q_nu[q] - nu[q] * dup[q]) * inv_up[q]
                    shrink = max(shrink, -da[q] * inv_a[q], -dup[q] * inv_up[q],
                                 -dmu[q] * inv_mu[q], -dnu[q] * inv_nu[q])
                deta[i] = (-c_eta[i] - eta[i] * ds[i]) * inv_s[i]
            step = 1.0 / shrink if shrink > 0.0 else 1e300
            step = _max_step(s, ds, step)
            step = _max_step(eta, deta, step)
            step = _max_step(sl, dsl, step)
            step = _max_step(lam, dlam, step)
            if corrector == 0:
                alpha = min(1.0, step)
                gap_aff = 0.0
                for c in range(k):
                    gap_aff += (sl[c] + alpha * dsl[c]) * (lam[c] + alpha * dlam[c])
                for q in range(n_free):
                    gap_aff += (a[q] + alpha * da[q]) * (mu[q] + alpha * dmu[q])
                    gap_aff += (up[q] + alpha * dup[q]) * (nu[q] + alpha * dnu[q])
                gap_aff /= n_comp
                target = CAUTIOUS_CENTERING * gap if cautious else gap * (gap_aff / gap) ** 3
                second = 0.0 if cautious else 1.0
                for c in range(k):
                    q_lam[c] = c_lam[c] + second * dsl[c] * dlam[c] - target
                for q in range(n_free):
                    q_mu[q] = c_mu[q] + second * da[q] * dmu[q] - target
                    q_nu[q] = c_nu[q] + second * dup[q] * dnu[q] - target
        alpha = min(1.0, max(STEP_TO_BOUNDARY, 1.0 - gap ** 0.5) * step)
        for i in range(n):
            s[i] += alpha * ds[i]
            eta[i] = w[i] / s[i] if cautious else eta[i] + alpha * deta[i]
        for q in range(n_free):
            a[q] += alpha * da[q]
            up[q] += alpha * dup[q]
            mu[q] += alpha * dmu[q]
            nu[q] += alpha * dnu[q]
        for c in range(k):
            sl[c] += alpha * dsl[c]
            lam[c] += alpha * dlam[c]
    a_out, mu_out, nu_out = _view(mat, 0, n, k), _view(mat, 1, n, k), _view(mat, 2, n, k)
    a_out[:, :] = 0.0
    mu_out[:, :] = 0.0
    nu_out[:, :] = 0.0
    for i in range(n):
        for q in range(ptr[i], ptr[i + 1]):
            a_out[i, col[q]] = a[q]
            mu_out[i, col[q]] = mu[q]
            nu_out[i, col[q]] = nu[q]
    return a_out, lam, mu_out, nu_out, converged, iterations


ROOT_MAX_ITER = 200  # safeguarded Newton steps of the one-resource solver (it needs a handful)
ROOT_TOL = 1e-15  # relative budget excess, or Newton step, at which the one-resource solver stops


@njit(cache=True, error_model="numpy", inline="always")
def _shares_at(t, vh, xh, zh, act, ch, w, a):
    """One contested resource at ``t = 1 / price``: every free agent's best amount
    ``a_i = clip(w_i t / (1 + z_i t) - c_i / v_i, 0, x_i)`` (written to ``a (n,)``).
    Returns ``(sum_i a_i, d sum / dt)``; the slope counts the agents strictly inside their bounds."""
    total = 0.0
    slope = 0.0
    for i in range(vh.size):
        if not act[i]:
            a[i] = 0.0
            continue
        denom = 1.0 + zh[i] * t
        want = w[i] * t / denom - ch[i] / vh[i]
        if want <= 0.0:
            a[i] = 0.0
        elif want >= xh[i]:
            a[i] = xh[i]
        else:
            a[i] = want
            slope += w[i] / (denom * denom)
        total += a[i]
    return total, slope


@njit(cache=True, error_model="numpy")
def _single_resource(vh2, xh2, zh2, act2, bh, ch, w, work):
    """Exact solution of a scaled sub-problem with one contested resource (``k = 1``).

    With a single price ``lam`` each free agent's optimum is
    ``a_i = clip(w_i / (lam + z_i) - c_i / v_i, 0, x_i)`` (stationarity of
    ``-w_i log(c_i + v_i a_i) + z_i a_i + lam a_i``), so the problem is the root of the
    increasing function ``sum_i a_i(t) - b`` of ``t = 1 / lam``: piecewise linear for plain
    PF, so safeguarded Newton lands on the root of each piece in one step. ``lam = 0`` when
    the agents' unpriced optima fit the budget (possible only with a linear term). Shapes and
    return value as :func:`_interior_point` with ``k = 1`` (``iterations`` counts Newton steps).
    """
    n = vh2.shape[0]
    mat, vec = work[0], work[1]
    a_out, mu_out, nu_out = _view(mat, 0, n, 1), _view(mat, 1, n, 1), _view(mat, 2, n, 1)
    vh, xh, zh, act = vh2[:, 0], xh2[:, 0], zh2[:, 0], act2[:, 0]
    a, lam = a_out[:, 0], vec[8, :1]
    budget = bh[0]
    # Unpriced optima (t = infinity): the demand, or where the linear term stops the agent.
    total_w = 0.0
    unpriced = 0.0
    for i in range(n):
        a[i] = 0.0
        if act[i]:
            total_w += w[i]
            want = w[i] / zh[i] - ch[i] / vh[i] if zh[i] > 0.0 else xh[i]
            a[i] = min(max(want, 0.0), xh[i])
            unpriced += a[i]
    iterations = 0
    if unpriced <= budget:
        lam[0] = 0.0
    else:
        # Bracket: at t = budget / sum(w) nobody can take more than w_i t, so the sum fits;
        # doubling from the point where plain PF would cap everyone reaches a sum above it.
        lo, hi = budget / total_w, budget / total_w
        for i in range(n):
            if act[i]:
                hi = max(hi, (ch[i] / vh[i] + xh[i]) / w[i])
        while _shares_at(hi, vh, xh, zh, act, ch, w, a)[0] < budget and iterations < ROOT_MAX_ITER:
            lo, hi = hi, 2.0 * hi
            iterations += 1
        # Start from plain PF's root with every agent inside its bounds.
        t = budget
        for i in range(n):
            if act[i]:
                t += ch[i] / vh[i]
        t = min(max(t / total_w, lo), hi)
        while iterations < ROOT_MAX_ITER:
            iterations += 1
            total, slope = _shares_at(t, vh, xh, zh, act, ch, w, a)
            excess = total - budget
            if abs(excess) <= ROOT_TOL * budget:
                break
            if excess < 0.0:
                lo = t
            else:
                hi = t
            step = t - excess / slope if slope > 0.0 else -1.0
            if abs(step - t) <= ROOT_TOL * t or hi - lo <= ROOT_TOL * hi:
                break  # round-off level: the allocation at t stands (feasibility repair trims it)
            t = step if lo < step < hi else 0.5 * (lo + hi)
        lam[0] = 1.0 / t
    for i in range(n):
        mu_out[i, 0] = 0.0
        nu_out[i, 0] = 0.0
        if act[i]:
            gain = w[i] * vh[i] / (ch[i] + vh[i] * a[i]) - zh[i] - lam[0]
            if a[i] <= 0.0:
                mu_out[i, 0] = max(-gain, 0.0)
            elif a[i] >= xh[i]:
                nu_out[i, 0] = max(gain, 0.0)
    return a_out, lam, mu_out, nu_out, iterations < ROOT_MAX_ITER, iterations


@njit(cache=True, error_model="numpy")
def solve_instance(v, x, b, c, w, z, tol, max_iter, a_out, price_out, mu_out, nu_out, work):
    """Solve one PF instance; writes ``a, price, mu, nu`` and returns ``(converged, iterations)``.

    Shapes: ``v, x, z (N, M)`` (``z >= 0`` the linear term, zeros for plain PF), ``b (M,)``,
    ``c (N,)`` (bias utility ``v_i . past_i``), ``w (N,)``.
    ``tol`` bounds the scaled stationarity residual and every scaled complementarity product.
    """
    n, m = v.shape
    aux, flags, cols = work[3], work[4], work[5]
    a_out[:, :] = 0.0
    price_out[:] = 0.0
    mu_out[:, :] = 0.0
    nu_out[:, :] = 0.0
    sigma, budget_left, kappa, offset, s, ch = aux[0, :m], aux[1, :m], aux[2, :n], aux[3, :n], aux[4, :n], aux[5, :n]
    included, contested = flags[0, :n], flags[0, n:n + m]
    free = flags[1, :n * m].reshape((n, m))
    xe = work[0][N_MAT_FIELDS - 3, :n * m].reshape((n, m))
    # Effective demand: zero-value entries and left-out agents demand nothing. A demand above
    # twice the budget can never bind (a <= b), so it is capped there: the solution is
    # unchanged and scaled demands stay O(1). Left out: agents who cannot reach a positive
    # utility (nothing demanded within budget, no bias).
    for i in range(n):
        attainable = 0.0
        for j in range(m):
            xe[i, j] = min(x[i, j], 2.0 * b[j]) if v[i, j] > 0.0 else 0.0
            attainable += v[i, j] * min(xe[i, j], b[j])
        included[i] = attainable > 0.0 or c[i] > 0.0
        if not included[i]:
            xe[i, :] = 0.0
    for j in range(m):
        total = 0.0
        biggest = 0.0
        for i in range(n):
            total += xe[i, j]
            biggest = max(biggest, min(xe[i, j], b[j]))
        penalised = False  # a linear term on a demanded entry can make a bound slack
        for i in range(n):
            penalised = penalised or (z[i, j] > 0.0 and xe[i, j] > 0.0)
        contested[j] = (total > b[j] or penalised) and b[j] > 0.0
        sigma[j] = biggest if contested[j] else 1.0
        budget_left[j] = b[j]
        if total <= b[j] and not contested[j]:
            for i in range(n):
                a_out[i, j] = xe[i, j]
    # Demands below NEGLIGIBLE_DEMAND of their resource's scale make the scaled problem nearly
    # singular: they are granted in full (a = x; taken back after the solve if not worth
    # the price) and the rest is solved without them.
    for i in range(n):
        for j in range(m):
            free[i, j] = contested[j] and xe[i, j] > NEGLIGIBLE_DEMAND * sigma[j]
            if contested[j] and not free[i, j] and xe[i, j] > 0.0:
                a_out[i, j] = xe[i, j]
                budget_left[j] -= xe[i, j]
    # Each agent's utility scale: its largest attainable utility.
    for i in range(n):
        kappa[i] = c[i]
        for j in range(m):
            kappa[i] += v[i, j] * (min(xe[i, j], b[j]) if contested[j] else a_out[i, j])
        if not included[i]:
            kappa[i] = 1.0
    # A contested resource worth less than NEGLIGIBLE_WORTH of every agent's utility (a budget left
    # over by round-off, say) cannot move the objective: it is shared in proportion to demand
    # at price 0, which satisfies the KKT conditions to within NEGLIGIBLE_WORTH.
    k = 0
    for j in range(m):
        if not contested[j]:
            continue
        worth = 0.0
        demand = 0.0
        for i in range(n):
            if free[i, j]:
                worth = max(worth, v[i, j] * sigma[j] / kappa[i])
                demand += xe[i, j]
        if worth <= NEGLIGIBLE_WORTH:
            contested[j] = False
            share = min(1.0, budget_left[j] / demand) if demand > 0.0 else 0.0
            for i in range(n):
                if free[i, j]:
                    a_out[i, j] = xe[i, j] * share if z[i, j] == 0.0 else 0.0
                    free[i, j] = False
        else:
            cols[k] = j
            k += 1
    converged = True
    iters = 0
    if k > 0:
        # Constant part of each utility: bias plus everything already fixed.
        for i in range(n):
            offset[i] = c[i]
            for j in range(m):
                offset[i] += v[i, j] * a_out[i, j]
            ch[i] = offset[i] / kappa[i] if included[i] else 1.0
        mat = work[0]
        vh, xh = _view(mat, N_MAT_FIELDS - 2, n, k), _view(mat, N_MAT_FIELDS - 1, n, k)
        zh = _view(mat, N_MAT_FIELDS - 4, n, k)
        act = flags[2, :n * k].reshape((n, k))
        bh = aux[6, :k]
        for q in range(k):
            j = cols[q]
            bh[q] = budget_left[j] / sigma[j]
            for i in range(n):
                act[i, q] = free[i, j]
                vh[i, q] = v[i, j] * sigma[j] / kappa[i] if free[i, j] else 0.0
                xh[i, q] = xe[i, j] / sigma[j] if free[i, j] else 0.0
                zh[i, q] = z[i, j] * sigma[j] if free[i, j] else 0.0
        if k == 1 and bh[0] > 0.0:
            ah, lam, mu, nu, converged, iters = _single_resource(vh, xh, zh, act, bh, ch, w, work)
        else:
            ah, lam, mu, nu, converged, iters = _interior_point(vh, xh, zh, act, bh, ch, w, tol, max_iter, work, False)
        if not converged:
            # Rarely Mehrotra's steps cycle; a cautious restart breaks the cycle.
            ah, lam, mu, nu, converged, more = _interior_point(vh, xh, zh, act, bh, ch, w, tol, max_iter, work, True)
            iters += more
        for q in range(k):
            j = cols[q]
            price_out[j] = lam[q] / sigma[j]
            for i in range(n):
                if not free[i, j]:
                    continue
                a_out[i, j] = ah[i, q] * sigma[j]
                mu_out[i, j] = mu[i, q] / sigma[j]
                # A capped demand's bound a <= x is far from binding: its multiplier is 0.
                nu_out[i, j] = nu[i, q] / sigma[j] if x[i, j] <= 2.0 * b[j] else 0.0
    # Duals of fixed entries from stationarity: marginal utility minus price and linear term.
    for i in range(n):
        s[i] = c[i]
        for j in range(m):
            s[i] += v[i, j] * a_out[i, j]
    for j in range(m):
        if b[j] == 0.0:
            for i in range(n):
                if included[i]:
                    price_out[j] = max(price_out[j], w[i] * v[i, j] / s[i] - z[i, j])
        for i in range(n):
            if not included[i]:
                continue
            if not free[i, j]:
                gain = w[i] * v[i, j] / s[i] - price_out[j] - z[i, j]
                if gain < 0.0 and contested[j] and a_out[i, j] > 0.0:
                    a_out[i, j] = 0.0  # a negligible demand granted in full that is not worth its price
                if a_out[i, j] >= x[i, j]:
                    nu_out[i, j] = max(gain, 0.0)
                    mu_out[i, j] = max(-gain, 0.0)
                else:
                    mu_out[i, j] = max(-gain, 0.0)
    return converged, iters


@njit(cache=True, error_model="numpy")
def _solve_range(v, x, b, c, w, z, tol, max_iter, a, price, mu, nu, converged, iterations, start, stop):
    """Solve instances ``start:stop`` of a flat batch.

    Each instance is copied element by element into buffers owned by this call and its
    results copied back the same way: slicing the shared batch arrays (``v[t]``) would
    update their reference counts atomically on every instance, and with several threads
    those shared counters serialise the cores.
    """
    n, m = v.shape[1], v.shape[2]
    work = make_workspace(n, m)
    vt, xt, zt = np.empty((n, m)), np.empty((n, m)), np.empty((n, m))
    at, mut, nut = np.empty((n, m)), np.empty((n, m)), np.empty((n, m))
    bt, pt, ct, wt = np.empty(m), np.empty(m), np.empty(n), np.empty(n)
    for t in range(start, stop):
        for i in range(n):
            ct[i] = c[t, i]
            wt[i] = w[t, i]
            for j in range(m):
                vt[i, j] = v[t, i, j]
                xt[i, j] = x[t, i, j]
                zt[i, j] = z[t, i, j]
        for j in range(m):
            bt[j] = b[t, j]
        conv, its = solve_instance(vt, xt, bt, ct, wt, zt, tol, max_iter, at, pt, mut, nut, work)
        for i in range(n):
            for j in range(m):
                a[t, i, j] = at[i, j]
                mu[t, i, j] = mut[i, j]
                nu[t, i, j] = nut[i, j]
        for j in range(m):
            price[t, j] = pt[j]
        converged[t] = conv
        iterations[t] = its


@njit(parallel=True, cache=True, error_model="numpy")
def _solve_parallel(v, x, b, c, w, z, tol, max_iter, a, price, mu, nu, converged, iterations, n_chunks):
    size = v.shape[0]
    for chunk in prange(n_chunks):
        _solve_range(v, x, b, c, w, z, tol, max_iter, a, price, mu, nu, converged, iterations,
                     chunk * size // n_chunks, (chunk + 1) * size // n_chunks)


def solve_batch(v, x, b, c, w, z, tol, max_iter, a, price, mu, nu, converged, iterations):
    """Solve a flat batch (leading axis) into the output arrays ``a, price, mu, nu, converged, iterations``.

    ``z (B, N, M)`` is the linear term (zeros for plain PF).

    Small batches run on the calling thread: starting the thread pool costs more than they do.
    """
    size = v.shape[0]
    threads = numba.get_num_threads()
    if size < PARALLEL_MIN_BATCH or threads == 1:
        _solve_range(v, x, b, c, w, z, tol, max_iter, a, price, mu, nu, converged, iterations, 0, size)
    else:
        _solve_parallel(v, x, b, c, w, z, tol, max_iter, a, price, mu, nu, converged, iterations, threads)
