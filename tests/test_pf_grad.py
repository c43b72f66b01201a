"""Implicit-differentiation gradients of PF against central finite differences."""
import numpy as np
import pytest
import torch

from mechzoo.mechanisms.pf import proportional_fairness, solve_proportional_fairness
from mechzoo.mechanisms.pf_grad import proportional_fairness_torch

MARGIN = 1e-2  # strict complementarity margin, in scaled units, for "non-degenerate"


def non_degenerate(v, x, b, past, w):
    """Whether every constraint is clearly active (multiplier > MARGIN) or clearly slack."""
    sol = solve_proportional_fairness(v, x, b, past, w)
    a = sol.allocation
    sigma = np.minimum(x, b).max(axis=0)
    lower = (a / sigma > MARGIN) | (sol.mu * sigma > MARGIN)
    upper = ((x - a) / sigma > MARGIN) | (sol.nu * sigma > MARGIN)
    budget = ((b - a.sum(0)) / sigma > MARGIN) | (sol.prices * sigma > MARGIN)
    both_active = (sol.mu * sigma > MARGIN) & (sol.nu * sigma > MARGIN)
    return lower.all() and upper.all() and budget.all() and not both_active.any()


def instances(seed, n, m, count):
    rng = np.random.default_rng(seed)
    found = []
    while len(found) < count:
        v = rng.uniform(0.1, 1.0, (n, m))
        x = rng.uniform(0.1, 1.0, (n, m))
        b = rng.uniform(0.2, 0.6, m) * n / 2
        past = rng.uniform(0.0, 0.3, (n, m))
        w = rng.uniform(0.5, 2.0, n)
        if non_degenerate(v, x, b, past, w):
            found.append((v, x, b, past, w, rng.normal(size=(n, m))))
    return found


def central_difference(f, z, h):
    grad = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += h
        down[idx] -= h
        grad[idx] = (f(up) - f(down)) / (2 * h)
    return grad


@pytest.mark.parametrize("n,m", [(2, 2), (4, 3), (10, 3)])
def test_gradients_match_finite_differences(n, m):
    for v, x, b, past, w, probe in instances(n + m, n, m, count=6):
        inputs = [torch.tensor(z, requires_grad=True) for z in (v, x, b, past, w)]
        loss = (proportional_fairness_torch(*inputs) * torch.tensor(probe)).sum()
        loss.backward()
        for k, z in enumerate((v, x, b, past, w)):
            def objective(zk, k=k):
                args = [v, x, b, past, w]
                args[k] = zk
                return (proportional_fairness(*args) * probe).sum()
            fd = central_difference(objective, z, 1e-6)
            analytic = inputs[k].grad.numpy()
            assert np.abs(analytic - fd).max() <= 1e-5 * max(np.abs(fd).max(), 1e-2), (k, analytic, fd)


def test_batched_gradients_match_single_instances():
    found = instances(7, 3, 2, count=4)
    v, x, b, past, w, probe = (np.stack(t) for t in zip(*found))
    values = torch.tensor(v, requires_grad=True)
    (proportional_fairness_torch(values, x, b, past, w) * torch.tensor(probe)).sum().backward()
    for t in range(len(found)):
        single = torch.tensor(v[t], requires_grad=True)
        (proportional_fairness_torch(single, x[t], b[t], past[t], w[t]) * torch.tensor(probe[t])).sum().backward()
        np.testing.assert_allclose(values.grad[t].numpy(), single.grad.numpy(), atol=1e-10)


def test_broadcast_budget_gradient_is_summed():
    rng = np.random.default_rng(3)
    v, x = rng.uniform(0.1, 1, (5, 3, 2)), rng.uniform(0.5, 1, (5, 3, 2))
    budget = torch.tensor([0.6, 0.9], requires_grad=True)
    proportional_fairness_torch(v, x, budget).sum().backward()
    # Every unit of a binding budget is handed out, so d(total allocation)/d(budget) counts binding rows.
    a = proportional_fairness(v, x, budget.detach().numpy())
    binding = np.isclose(a.sum(1), budget.detach().numpy()[None], atol=1e-9)
    np.testing.assert_allclose(budget.grad.numpy(), binding.sum(0), atol=1e-6)


def test_degenerate_instance_gives_finite_subgradient():
    """Zero demands make the KKT system singular: the minimum-norm solution is still finite."""
    v = np.array([[1.0, 0.5], [1.0, 0.25]])
    x = np.array([[1.0, 0.0], [1.0, 1.0]])
    values = torch.tensor(v, requires_grad=True)
    demands = torch.tensor(x, requires_grad=True)
    proportional_fairness_torch(values, demands, np.ones(2))[0].sum().backward()
    assert torch.isfinite(values.grad).all() and torch.isfinite(demands.grad).all()


@pytest.mark.parametrize("n,m", [(2, 2), (10, 3), (4, 1)])
def test_reduced_adjoint_equals_the_dense_system(n, m):
    """The adjoint of the free entries and active prices gives the dense system's gradients, with
    past allocations, weights, a linear term, zero demands and identical agents (ties)."""
    from mechzoo.mechanisms.pf_grad import pf_vjp

    rng = np.random.default_rng(n * 10 + m)
    p = 300
    v = rng.uniform(0.1, 1, (p, n, m))
    x = rng.uniform(0.1, 1, (p, n, m)) * (rng.random((p, n, m)) < 0.6)
    v[: p // 4, -1], x[: p // 4, -1] = v[: p // 4, 0], x[: p // 4, 0]
    b = rng.uniform(0.2, 1, (p, m)) * n / 2
    past = rng.uniform(0, 0.3, (p, n, m)) * (rng.random((p, n, m)) < 0.3)
    w = rng.uniform(0.5, 2, (p, n))
    z = rng.exponential(0.3, (p, n, m)) * (rng.random((p, n, m)) < 0.5)
    sol = solve_proportional_fairness(v, x, b, past, w, z)
    g = rng.standard_normal((p, n, m))
    reduced = pf_vjp(v, x, b, past, w, sol, g)
    dense = pf_vjp(v, x, b, past, w, sol, g, dense=True)
    for name, r, d in zip(("values", "demands", "budget", "past", "weights", "linear"), reduced, dense):
        np.testing.assert_allclose(r, d, rtol=1e-9, atol=1e-9 * (1 + np.abs(d).max()), err_msg=name)


def test_entry_with_both_bounds_active_falls_back_to_the_dense_system():
    """A zero-demand entry whose multipliers of a >= 0 and a <= x are both positive leaves the
    reduced system undetermined; that instance is solved densely (minimum norm), the others not."""
    from mechzoo.mechanisms.pf_grad import _vjp_reduced, pf_vjp

    v = np.array([[[1.0, 0.5], [1.0, 0.25]]] * 2)
    x = np.array([[[1.0, 0.0], [1.0, 1.0]]] * 2)
    b, past, w = np.ones((2, 2)), np.zeros((2, 2, 2)), np.ones((2, 2))
    sol = solve_proportional_fairness(v, x, b)
    mu, nu = sol.mu.copy(), sol.nu.copy()
    mu[1, 0, 1], nu[1, 0, 1] = 0.3, 0.2  # instance 1: both bounds of entry (0, 1) active
    g = np.array([[[1.0, 0.5], [-0.2, 0.3]]] * 2)
    rho = np.ones((2, 2))
    inc = np.ones((2, 2), dtype=bool)
    ok = _vjp_reduced(v, inc, rho, sol.allocation, mu, x - sol.allocation, nu, sol.prices, g)[3]
    assert ok.tolist() == [True, False]
    mixed = type(sol)(sol.allocation, sol.prices, mu, nu, sol.iterations, sol.from_reference)
    ours = pf_vjp(v, x, b, past, w, mixed, g)
    dense = pf_vjp(v, x, b, past, w, mixed, g, dense=True)
    for r, d in zip(ours, dense):
        np.testing.assert_allclose(r, d, rtol=1e-12, atol=1e-12)
