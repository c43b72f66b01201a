"""Proportional fairness: agreement with the cvxpy reference, KKT optimality, feasibility, edge cases."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mechzoo.mechanisms import (
    is_feasible, kkt_residual, proportional_fairness, proportional_fairness_reference, solve_proportional_fairness,
)
from mechzoo.mechanisms.pf import bias_utility
from mechzoo.mechanisms.pf_reference import solve_reference_instance


def random_instances(rng, size, n, m):
    """The papers' distribution plus the hard cases: zero demands, tiny and huge budgets, ties, past."""
    v = rng.uniform(0.1, 1.0, (size, n, m))
    x = rng.uniform(0.1, 1.0, (size, n, m)) * (rng.random((size, n, m)) < 0.5)
    b = rng.uniform(0.05, 1.0, (size, m)) * n / 2
    past = rng.uniform(0.0, 0.3, (size, n, m)) * (rng.random((size, n, m)) < 0.3)
    q = size // 10
    b[:q] *= 1e-6                       # tiny budgets
    b[q:2 * q] *= 1e6                   # huge budgets
    v[2 * q:3 * q] = v[2 * q:3 * q, :1]  # every agent reports the same values (ties)
    x[3 * q:4 * q] = 0.0                # nobody demands anything
    x[4 * q:5 * q, :, 0] = 0.0          # a resource nobody demands
    return v, x, b, past


def log_nsw(values, allocation, past):
    u = bias_utility(values, past + allocation)
    return np.where(u > 0, np.log(np.where(u > 0, u, 1.0)), 0.0).sum(-1)


@pytest.mark.slow
@pytest.mark.parametrize("n,m", [(2, 2), (10, 3), (50, 5)])
def test_agrees_with_reference(n, m):
    rng = np.random.default_rng(n * 100 + m)
    size = 2000
    v, x, b, past = random_instances(rng, size, n, m)
    sol = solve_proportional_fairness(v, x, b, past)
    assert not sol.from_reference.any()
    ref = np.zeros_like(v)
    reference_failed = np.zeros(size, dtype=bool)
    for t in range(size):
        try:
            ref[t] = solve_reference_instance(v[t], x[t], b[t], past[t], np.ones(n))[0]
        except RuntimeError:  # Clarabel gives up on a few tiny-budget instances
            reference_failed[t] = True
    assert reference_failed.mean() < 0.01
    assert is_feasible(sol.allocation, x, b).all()
    assert kkt_residual(v, x, b, sol, past).max() <= 1e-8
    u, u_ref = bias_utility(v, past + sol.allocation), bias_utility(v, past + ref)
    utility_ok = np.all(np.abs(u - u_ref) <= 1e-6 * np.maximum(u_ref, 1e-12), axis=-1)
    alloc_ok = np.all(np.abs(sol.allocation - ref) <= 1e-6 * b[:, None, :], axis=(-2, -1))
    # Where the two disagree by more than the tolerance, the reference is the inaccurate one:
    # our Nash welfare is at least as high, up to 1e-9 in log (cvxpy's exponential-cone solve
    # stops with allocations near 1e-7 from the optimum).
    ours_better = log_nsw(v, sol.allocation, past) >= log_nsw(v, ref, past) - 1e-9
    ties = np.zeros(size, dtype=bool)
    ties[size // 10 * 2:size // 10 * 3] = True  # PF allocation need not be unique there
    checked = ~reference_failed
    assert np.all((utility_ok | ours_better)[checked])
    assert np.all((alloc_ok | ours_better | ties)[checked])
    assert utility_ok[checked].mean() > 0.95


def test_figure1_instance_of_rpf_paper():
    """RPF-Net paper Fig. 1: truthful PF gives a1 = (0.25, 1), a2 = (0.75, 0)."""
    v = np.array([[1.0, 0.5], [1.0, 0.25]])
    a = proportional_fairness(v, np.ones((2, 2)), np.ones(2))
    np.testing.assert_allclose(a, [[0.25, 1.0], [0.75, 0.0]], atol=1e-9)
    # Under-reporting the second value towards 0.25 moves agent 1 towards utility 0.875.
    lie = proportional_fairness(np.array([[1.0, 0.26], [1.0, 0.25]]), np.ones((2, 2)), np.ones(2))
    np.testing.assert_allclose(lie[0], [(1 - 0.26) / 2, 1.0], atol=1e-8)


def test_sama_example2_second_round():
    """SAMA Example 2, round 2: max log(a1) + log(a2 + 2), a1 <= 4, a2 <= 2, a1 + a2 <= 4 -> (3, 1)."""
    a = proportional_fairness([[1.0], [1.0]], [[4.0], [2.0]], [4.0], past=[[0.0], [2.0]])
    np.testing.assert_allclose(a, [[3.0], [1.0]], atol=1e-9)


def test_identical_agents_get_identical_bundles():
    rng = np.random.default_rng(0)
    v = np.repeat(rng.uniform(0.1, 1, (1, 3)), 4, axis=0)
    x = np.ones((4, 3))
    a = proportional_fairness(v, x, np.array([1.0, 2.0, 0.5]))
    np.testing.assert_allclose(a, np.broadcast_to(a[0], a.shape), atol=1e-9)
    np.testing.assert_allclose(a.sum(0), [1.0, 2.0, 0.5], atol=1e-9)


def test_one_contested_resource_is_solved_to_round_off():
    """A single contested resource is solved by the root of its price (no interior point):
    KKT holds to round-off, with past, weights and a linear term, against the reference."""
    rng = np.random.default_rng(3)
    size, n = 400, 6
    v = rng.uniform(0.1, 1.0, (size, n, 1))
    x = rng.uniform(0.0, 1.0, (size, n, 1)) * (rng.random((size, n, 1)) < 0.8)
    b = rng.uniform(0.2, 2.0, (size, 1))
    past = rng.uniform(0.0, 0.5, (size, n, 1)) * (rng.random((size, n, 1)) < 0.4)  # some agents priced out
    w = rng.uniform(0.5, 2.0, (size, n))
    z = rng.exponential(1.0, (size, n, 1)) * (rng.random((size, n, 1)) < 0.5)
    for linear in (None, z):
        sol = solve_proportional_fairness(v, x, b, past, w, linear=linear)
        assert not sol.from_reference.any()
        assert sol.iterations.max() < 40
        assert kkt_residual(v, x, b, sol, past, w, linear=linear).max() <= 1e-12
        ref = proportional_fairness_reference(v[:20], x[:20], b[:20], past[:20], w[:20],
                                              linear=None if linear is None else linear[:20])
        np.testing.assert_allclose(sol.allocation[:20], ref, atol=1e-6)
    # A linear term large enough that the agents' unpriced optima fit: the price is 0 and each
    # agent stops where its marginal utility meets its linear term, w / z - c / v.
    v1, x1, z1 = np.array([[1.0], [0.5]]), np.array([[1.0], [1.0]]), np.array([[4.0], [5.0]])
    sol = solve_proportional_fairness(v1, x1, np.array([1.0]), linear=z1)
    assert sol.prices[0] == 0.0
    np.testing.assert_allclose(sol.allocation, 1.0 / z1, rtol=1e-15)


@pytest.mark.parametrize("case", ["zero_demand", "zero_budget", "single_agent", "uncontested", "zero_value"])
def test_degenerate_inputs(case):
    v = np.array([[1.0, 0.5], [0.3, 0.9]])
    x = np.array([[1.0, 1.0], [1.0, 1.0]])
    b = np.array([1.0, 1.0])
    if case == "zero_demand":
        x = np.zeros((2, 2))
        expected = np.zeros((2, 2))
    elif case == "zero_budget":
        b = np.array([0.0, 1.0])
        expected = None
    elif case == "single_agent":
        v, x = v[:1], np.array([[3.0, 0.5]])
        expected = np.array([[1.0, 0.5]])
    elif case == "uncontested":
        b = np.array([5.0, 5.0])
        expected = x
    else:
        v = np.array([[1.0, 0.0], [0.3, 0.9]])
        expected = None
    sol = solve_proportional_fairness(v, x, b)
    a = sol.allocation
    assert is_feasible(a, x, b)
    assert kkt_residual(v, x, b, sol) <= 1e-8
    if expected is not None:
        np.testing.assert_allclose(a, expected, atol=1e-12)
    if case == "zero_budget":
        np.testing.assert_array_equal(a[:, 0], 0.0)
    if case == "zero_value":
        assert a[0, 1] == 0.0  # zero-value entries get nothing
        np.testing.assert_allclose(a[1, 1], 1.0, atol=1e-9)


def test_left_out_agent_gets_zero_and_others_unaffected():
    v = np.array([[1.0, 1.0], [0.5, 0.2], [0.7, 0.7]])
    x = np.array([[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    a = proportional_fairness(v, x, np.ones(2))
    np.testing.assert_array_equal(a[1], 0.0)
    np.testing.assert_allclose(a[[0, 2]], proportional_fairness(v[[0, 2]], x[[0, 2]], np.ones(2)), atol=1e-12)


def test_batch_broadcasting_matches_loop():
    rng = np.random.default_rng(1)
    v, x = rng.uniform(0.1, 1, (3, 4, 5, 2)), rng.uniform(0, 1, (3, 4, 5, 2))
    b = np.array([1.0, 2.0])
    a = proportional_fairness(v, x, b)
    assert a.shape == (3, 4, 5, 2)
    np.testing.assert_allclose(a[2, 1], proportional_fairness(v[2, 1], x[2, 1], b), atol=1e-12)


def test_weights_match_reference():
    rng = np.random.default_rng(2)
    v, x = rng.uniform(0.1, 1, (20, 3, 2)), rng.uniform(0.1, 1, (20, 3, 2))
    w = rng.uniform(0.5, 2.0, (20, 3))
    b = np.ones(2)
    sol = solve_proportional_fairness(v, x, b, weights=w)
    ref = proportional_fairness_reference(v, x, b, weights=w)
    assert kkt_residual(v, x, b, sol, weights=w).max() <= 1e-8
    weighted_log_nsw = lambda a: (w * np.log(bias_utility(v, a))).sum(-1)  # noqa: E731
    assert np.all(weighted_log_nsw(sol.allocation) >= weighted_log_nsw(ref) - 1e-9)
    np.testing.assert_allclose(bias_utility(v, sol.allocation), bias_utility(v, ref), rtol=1e-5)


@pytest.mark.parametrize("kwargs,name", [
    (dict(budget=[-1.0, 1.0]), "budget"),
    (dict(values=[[np.nan, 1.0], [1.0, 1.0]]), "values"),
    (dict(demands=[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]), "demands"),
    (dict(past=[[np.inf, 0.0], [0.0, 0.0]]), "past"),
    (dict(weights=[1.0, 0.0]), "weights"),
    (dict(budget=[1.0, 1.0, 1.0]), "budget"),
])
def test_invalid_arguments_name_the_argument(kwargs, name):
    args = dict(values=np.ones((2, 2)), demands=np.ones((2, 2)), budget=np.ones(2))
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        proportional_fairness(**args)


def test_overflowing_utilities_raise():
    with pytest.raises(ValueError, match="overflow"):
        proportional_fairness(np.full((2, 2), 1e200), np.full((2, 2), 1e200), np.ones(2))


def test_mismatched_batch_shapes_raise():
    with pytest.raises(ValueError, match="broadcast"):
        proportional_fairness(np.ones((3, 2, 2)), np.ones((4, 2, 2)), np.ones(2))


# Within one instance, positive inputs span up to 1e6; across instances the budget's unit
# moves over 16 orders of magnitude. Zeros are drawn often (degenerate cases).
moderate = st.one_of(st.just(0.0), st.floats(1e-3, 1e3))
scale = st.sampled_from([1e-8, 1e-3, 1.0, 1e3, 1e8])


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(1, 5), m=st.integers(1, 3), unit=scale)
def test_feasible_and_optimal_on_any_input(data, n, m, unit):
    v = data.draw(hnp.arrays(np.float64, (n, m), elements=moderate))
    x = data.draw(hnp.arrays(np.float64, (n, m), elements=moderate)) * unit
    b = data.draw(hnp.arrays(np.float64, (m,), elements=moderate)) * unit
    past = data.draw(hnp.arrays(np.float64, (n, m), elements=moderate)) * unit
    sol = solve_proportional_fairness(v, x, b, past)
    assert is_feasible(sol.allocation, x, b)
    assert kkt_residual(v, x, b, sol, past) <= 1e-8


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(1, 4), m=st.integers(1, 3))
def test_feasible_on_extreme_inputs(data, n, m):
    """Any non-negative floats whose utilities do not overflow, subnormals included: always a
    feasible, finite allocation."""
    anything = st.floats(0.0, 1e145, allow_subnormal=True)
    v, x, past = (data.draw(hnp.arrays(np.float64, (n, m), elements=anything)) for _ in range(3))
    b = data.draw(hnp.arrays(np.float64, (m,), elements=anything))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a = proportional_fairness(v, x, b, past)
    assert np.all(np.isfinite(a))
    assert is_feasible(a, x, b)


def test_zero_budget_with_huge_prices_is_optimal_to_round_off():
    """A zero budget is priced at the largest marginal utility (here 1.6e9); the residual is
    measured relative to that price, so its round-off does not count as a violation."""
    v = np.array([[934.0, 0.03125], [0.03125, 0.03125]])
    past = np.array([[4.22e-6, 3.125e-10], [3.125e-10, 3.125e-10]])
    x, b = np.zeros((2, 2)), np.zeros(2)
    sol = solve_proportional_fairness(v, x, b, past)
    np.testing.assert_array_equal(sol.allocation, 0.0)
    np.testing.assert_allclose(sol.prices, 0.03125 / (2 * 0.03125 * 3.125e-10), rtol=1e-12)
    assert kkt_residual(v, x, b, sol, past) <= 1e-12
