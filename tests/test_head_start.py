"""The uniform rule with head starts: the worked example, the cvxpy reference, what it ignores,
its limits and units, the torch form and its gradient, the oracles on it, and bad input."""
import cvxpy as cp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mechzoo.agents import GradientOracle, ReportSpace
from mechzoo.mechanisms.feasibility import is_feasible
from mechzoo.mechanisms.head_start import head_start, head_start_torch
from mechzoo.mechanisms.registry import make_one_shot
from mechzoo.mechanisms.simple import equal_split

# Two agents, two resources of budget 1. Resource 1 fits (agent 0 alone demands it) and goes to
# agent 0 in full: its head start is t. Resource 0 is over-demanded (1 + 1 > 1) and split by
# max log(t + a0) + log(a1) s.t. a0 + a1 = 1: a0 = (1 - t) / 2, a1 = (1 + t) / 2 for t <= 1.
DEMANDS = np.array([[1.0, 1.0], [1.0, 0.0]])
BUDGET = np.ones(2)


@pytest.mark.parametrize("t", [0.0, 0.2, 0.5, 1.0, 3.0])
def test_worked_example(t):
    values = np.random.default_rng(0).uniform(0.1, 1.0, (2, 2))
    a0 = max(0.0, (1 - t) / 2)
    np.testing.assert_allclose(head_start(values, DEMANDS, BUDGET, head_start_weight=t),
                               [[a0, 1.0], [1 - a0, 0.0]], rtol=0, atol=1e-15)


def _reference(demands, budget, weights, t):
    """Each over-demanded resource by cvxpy (and the head starts h): max sum_i w_i log(h_i + a_i / b) s.t. 0 <= a <= min(x, b), sum a = b."""
    share = np.minimum(demands, budget) / budget
    fits = demands.sum(axis=0) <= budget
    head = t * (share * fits).sum(axis=1)
    alloc = demands.copy()
    for m in np.flatnonzero(~fits):
        a = cp.Variable(len(head))
        problem = cp.Problem(cp.Maximize(weights @ cp.log(head + a / budget[m])),
                             [a >= 0, a <= share[:, m] * budget[m], cp.sum(a) == budget[m]])
        problem.solve(solver=cp.CLARABEL)
        alloc[:, m] = a.value
    return alloc, head


@pytest.mark.parametrize("seed", range(6))
def test_matches_the_cvxpy_reference(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(2, 7), rng.integers(1, 4)
    demands, budget = rng.uniform(0, 1, (n, m)), rng.uniform(0.3, 0.5 * n, m)
    weights, t = rng.uniform(0.5, 2, n), rng.uniform(0, 2)
    ours = head_start(np.ones((n, m)), demands, budget, weights=weights, head_start_weight=t)
    reference, head = _reference(demands, budget, weights, t)
    np.testing.assert_allclose(ours, reference, atol=1e-4)  # the interior-point reference is good to ~1e-5
    objective = lambda a: (weights[:, None] * np.log(head[:, None] + a / budget)).sum(axis=0)  # noqa: E731
    contended = demands.sum(axis=0) > budget  # ours is the exact optimum: no worse than the reference, which
    assert np.all(objective(ours)[contended] >= objective(reference)[contended] - 1e-5)  # overshoots bounds by ~1e-7


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), t=st.floats(0.0, 3.0))
def test_values_and_past_do_not_move_the_allocation(seed, t):
    rng = np.random.default_rng(seed)
    demands, budget = rng.uniform(0, 1, (3, 4, 3)), rng.uniform(0.2, 2, (3, 3))
    first = head_start(rng.uniform(0.1, 1, demands.shape), demands, budget, head_start_weight=t)
    second = head_start(rng.uniform(0.1, 1, demands.shape), demands, budget, rng.uniform(0, 1, demands.shape),
                        head_start_weight=t)
    np.testing.assert_array_equal(first, second)


def test_without_head_starts_it_is_the_uniform_rule():
    rng = np.random.default_rng(1)
    values, demands, budget = np.ones((200, 5, 3)), rng.uniform(0, 1, (200, 5, 3)), rng.uniform(0.3, 2, (200, 3))
    np.testing.assert_allclose(head_start(values, demands, budget, head_start_weight=0.0),
                               equal_split(values, demands, budget), rtol=0, atol=1e-14)


def test_per_resource_units_and_weight_scale_do_not_matter():
    """f(v, x c, b c) = f(v, x, b) c for a unit change c_m of each resource; weights w and 7 w agree."""
    rng = np.random.default_rng(3)
    values, demands, budget = rng.uniform(0.1, 1, (50, 4, 3)), rng.uniform(0, 1, (50, 4, 3)), np.full(3, 1.5)
    weights, scale = rng.uniform(0.5, 2, (50, 4)), np.array([1e-3, 1.0, 250.0])
    base = head_start(values, demands, budget, weights=weights, head_start_weight=0.7)
    scaled = head_start(values, demands * scale, budget * scale, weights=7 * weights, head_start_weight=0.7)
    np.testing.assert_allclose(scaled / scale, base, rtol=1e-12, atol=1e-15)


def test_nash_weights_scale_the_shares():
    a = make_one_shot("head_start", weights=[2.0, 1.0])(np.ones((2, 1)), np.ones((2, 1)), [1.0])
    np.testing.assert_allclose(a, [[2 / 3], [1 / 3]], rtol=1e-15)


def test_zero_and_extreme_budgets_stay_finite_and_feasible():
    demands = np.array([[1.0, 1.0, 1.0], [2.0, 1e-320, 3.0]])
    a = head_start(np.ones((2, 3)), demands, np.array([0.0, 5e-324, 1e200]))
    assert np.all(np.isfinite(a)) and is_feasible(a, demands, np.array([0.0, 5e-324, 1e200]))
    np.testing.assert_array_equal(a[:, 2], demands[:, 2])  # fits: in full


def test_torch_form_matches_and_its_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    values, demands, budget = rng.uniform(0.1, 1, (8, 3, 2)), rng.uniform(0.2, 1, (8, 3, 2)), rng.uniform(0.8, 1.2, 2)
    v = torch.tensor(values, requires_grad=True)
    x = torch.tensor(demands, requires_grad=True)
    b = torch.tensor(budget, requires_grad=True)
    probe = rng.normal(size=demands.shape)  # a linear functional of the allocation, so every entry matters
    a = head_start_torch(v, x, b, head_start_weight=0.4)
    np.testing.assert_allclose(a.detach().numpy(), head_start(values, demands, budget, head_start_weight=0.4),
                               rtol=0, atol=1e-15)
    (a * torch.tensor(probe)).sum().backward()
    assert v.grad is None  # the values are not read
    total = lambda d, bb: (head_start(values, d, bb, head_start_weight=0.4) * probe).sum()  # noqa: E731
    h, dx, db = 1e-7, rng.normal(size=demands.shape), rng.normal(size=budget.shape)
    finite = (total(demands + h * dx, budget + h * db) - total(demands - h * dx, budget - h * db)) / (2 * h)
    analytic = float((x.grad.numpy() * dx).sum() + (b.grad.numpy() * db).sum())
    assert analytic == pytest.approx(finite, rel=1e-5, abs=1e-8)


def test_value_misreports_gain_nothing_and_the_gradient_oracle_runs_on_demands():
    rng = np.random.default_rng(5)
    values, demands = rng.uniform(0.1, 1, (20, 3, 2)), rng.uniform(0, 1, (20, 3, 2))
    only_values = GradientOracle(2, 10, 0.01, ReportSpace(fields="values"), random_pool=8, seed=0)
    assert np.abs(only_values.best_response("head_start", values, demands, np.ones(2)).gain).max() <= 1e-12
    both = GradientOracle(2, 10, 0.01, random_pool=8, seed=0).best_response("head_start", values, demands, np.ones(2))
    assert np.all(both.gain >= 0) and np.all(np.isfinite(both.gain))


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), True, "1", None])
def test_bad_head_start_weight_is_named(bad):
    with pytest.raises(ValueError, match="head_start_weight"):
        head_start(np.ones((2, 1)), np.ones((2, 1)), [1.0], head_start_weight=bad)
    with pytest.raises(ValueError, match="head_start_weight"):
        make_one_shot("head_start", head_start_weight=bad)


def test_bad_reports_are_refused_like_everywhere_else():
    with pytest.raises(ValueError, match="demands"):
        head_start(np.ones((2, 1)), -np.ones((2, 1)), [1.0])
    with pytest.raises(ValueError, match="values"):
        head_start_torch(torch.full((2, 1), float("nan")), torch.ones(2, 1), torch.ones(1))
