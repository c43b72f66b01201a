"""One-shot reference rules (uniform rule, proportional to demand), the registry, and the
feasibility invariant of every registered one-shot mechanism on random and adversarial input."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mechzoo.mechanisms import registry
from mechzoo.mechanisms.feasibility import is_feasible
from mechzoo.mechanisms.registry import OneShotMechanism, make_one_shot, one_shot_names, register_one_shot
from mechzoo.mechanisms.simple import equal_split, proportional_to_demand

ONE_SHOT = ["equal", "proportional", "pf", "pa", "head_start"]


def col(*xs):
    """An (N, 1) array: one resource, one row per agent."""
    return np.array(xs, dtype=float)[:, None]


# --- uniform rule -----------------------------------------------------------------------

def test_uniform_rule_passes_unused_share_on():
    a = equal_split(np.ones((3, 1)), col(0.2, 1, 1), [1.0])
    np.testing.assert_allclose(a, col(0.2, 0.4, 0.4), rtol=0, atol=1e-15)


def test_uniform_rule_fills_several_levels():
    # Level t: 0.1 + 0.3 + 2t = 3, so t = 1.3.
    a = equal_split(np.ones((4, 1)), col(0.1, 0.3, 2, 5), [3.0])
    np.testing.assert_allclose(a, col(0.1, 0.3, 1.3, 1.3), rtol=1e-14)


def test_uniform_rule_gives_demand_when_it_fits_and_splits_equally_otherwise():
    x = np.array([[1.0, 4.0], [2.0, 4.0]])
    a = equal_split(np.ones((2, 2)), x, [5.0, 2.0])
    np.testing.assert_array_equal(a, [[1.0, 1.0], [2.0, 1.0]])


def test_uniform_rule_with_zero_budget_or_zero_demand():
    a = equal_split(np.ones((2, 2)), [[0.0, 1.0], [0.0, 3.0]], [4.0, 0.0])
    np.testing.assert_array_equal(a, np.zeros((2, 2)))


# --- proportional to demand -----------------------------------------------------------------

def test_proportional_scales_all_demands_by_one_factor():
    a = proportional_to_demand(np.ones((2, 1)), col(1, 3), [2.0])
    np.testing.assert_allclose(a, col(0.5, 1.5), rtol=1e-15)


def test_proportional_gives_demand_when_it_fits_and_nothing_without_demand():
    x = np.array([[1.0, 0.0], [2.0, 0.0]])
    a = proportional_to_demand(np.ones((2, 2)), x, [3.0, 5.0])
    np.testing.assert_array_equal(a, x)


@pytest.mark.parametrize("rule", [equal_split, proportional_to_demand])
def test_simple_rules_ignore_values_past_and_weights(rule):
    x, b = np.array([[1.0, 2.0], [3.0, 0.5]]), [2.0, 1.0]
    base = rule(np.ones((2, 2)), x, b)
    other = rule([[5.0, 0.0], [0.1, 2.0]], x, b, past=np.full((2, 2), 7.0), weights=[3.0, 1.0])
    np.testing.assert_array_equal(base, other)


@pytest.mark.parametrize("rule", [equal_split, proportional_to_demand])
def test_simple_rules_broadcast_batch_dimensions(rule):
    rng = np.random.default_rng(0)
    values = rng.uniform(0.1, 1, (3, 2))
    demands = rng.uniform(0, 1, (4, 1, 3, 2))
    budget = rng.uniform(0, 2, (5, 2))
    a = rule(values, demands, budget)
    assert a.shape == (4, 5, 3, 2)
    for k in range(4):
        for j in range(5):
            np.testing.assert_array_equal(a[k, j], rule(values, demands[k, 0], budget[j]))


@pytest.mark.parametrize("rule", [equal_split, proportional_to_demand])
@pytest.mark.parametrize("kwargs, name", [
    (dict(demands=[[-1.0]]), "demands"),
    (dict(budget=[np.nan]), "budget"),
    (dict(demands=[[1.0, 1.0]]), "demands"),
    (dict(values=[1.0]), "values"),
])
def test_simple_rules_reject_bad_input_naming_the_argument(rule, kwargs, name):
    args = dict(values=[[1.0]], demands=[[1.0]], budget=[1.0]) | kwargs
    with pytest.raises(ValueError, match=name):
        rule(**args)


# --- feasibility on random and adversarial input ----------------------------------------

ENTRY = st.one_of(st.just(0.0), st.sampled_from([1e-9, 1.0, 1e6]), st.floats(0, 10))
BUDGET_ENTRY = st.one_of(st.just(0.0), st.sampled_from([1e-12, 1e-6, 1.0, 1e12]), st.floats(0, 20))


@st.composite
def instances(draw):
    """(values, demands, budget) with zeros, ties, tiny and huge entries."""
    n, m = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    values = draw(arrays(np.float64, (n, m), elements=ENTRY))
    demands = draw(arrays(np.float64, (n, m), elements=ENTRY))
    if draw(st.booleans()):  # identical agents: ties
        values[:] = values[0]
        demands[:] = demands[0]
    budget = draw(arrays(np.float64, (m,), elements=BUDGET_ENTRY))
    return values, demands, budget


@pytest.mark.parametrize("name", ONE_SHOT)
@settings(max_examples=80, deadline=None)
@given(instance=instances())
@example(instance=(np.array([[1e-9]]), np.array([[1.0]]), np.array([2.2250738585072014e-309])))
@example(instance=(np.zeros((3, 1)), np.array([[1e-3], [1.0], [1.0]]), np.array([2.22507386e-313])))  # subnormal budget
@example(instance=(np.array([[1.0, 7.33], [0.0, 1.24]]), np.array([[1e6, 1e6], [0.0, 1e-9]]), np.array([1e12, 1.69])))
@example(instance=(np.array([[1.0, 1.0], [9.0, 1e-9]]), np.array([[6.0, 9.0], [1e-9, 1e6]]), np.array([2.0, 1.0])))
def test_every_one_shot_mechanism_is_feasible(name, instance):
    values, demands, budget = instance
    a = make_one_shot(name)(values, demands, budget)
    assert a.shape == demands.shape
    assert is_feasible(a, demands, budget)


@pytest.mark.parametrize("rule", [equal_split, proportional_to_demand])
@settings(max_examples=80, deadline=None)
@given(instance=instances())
def test_simple_rules_use_the_budget_and_treat_equal_agents_equally(rule, instance):
    values, demands, budget = instance
    a = rule(values, demands, budget)
    used = np.minimum(budget, demands.sum(axis=0))
    np.testing.assert_allclose(a.sum(axis=0), used, rtol=1e-12, atol=1e-300)  # subnormal budgets underflow
    same = np.all(demands[:, None] == demands[None, :], axis=-1)
    i, j = np.nonzero(same)
    np.testing.assert_array_equal(a[i], a[j])


# --- registry -------------------------------------------------------------------------------

def test_registry_lists_the_built_in_mechanisms():
    assert set(one_shot_names()) >= {"pf", "pa", "equal", "proportional"}
    for name in one_shot_names():
        mech = make_one_shot(name)
        assert isinstance(mech, OneShotMechanism) and mech.name == name and mech.description


def test_registry_returns_a_mechanism_object_unchanged():
    mech = make_one_shot("equal")
    assert make_one_shot(mech) is mech
    with pytest.raises(ValueError, match="names only"):
        make_one_shot(mech, weights=[1.0])


def test_registry_rejects_unknown_names_listing_the_allowed_ones():
    with pytest.raises(ValueError, match="allowed names: .*pf.*pa.*equal.*proportional"):
        make_one_shot("vcg")
    with pytest.raises(ValueError, match="allowed names"):
        make_one_shot(None)


def test_registry_rejects_unknown_keyword_arguments():
    with pytest.raises(ValueError, match="allowed: weights"):
        make_one_shot("pf", tol=1e-3)


def test_registry_binds_pf_weights():
    a = make_one_shot("pf", weights=[2.0, 1.0])(np.ones((2, 1)), np.ones((2, 1)), [1.0])
    np.testing.assert_allclose(a, col(2 / 3, 1 / 3), atol=1e-8)


def test_register_one_shot_adds_mechanisms_and_refuses_duplicates(monkeypatch):
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))

    def nothing(values, demands, budget, past=None):
        return np.zeros(np.shape(demands))

    register_one_shot("nothing", lambda: OneShotMechanism("nothing", nothing, "allocates nothing"))
    assert "nothing" in one_shot_names()
    np.testing.assert_array_equal(make_one_shot("nothing")(np.ones((2, 1)), np.ones((2, 1)), [1.0]), 0.0)
    with pytest.raises(ValueError, match="already registered"):
        register_one_shot("pf", lambda: make_one_shot("equal"))
    with pytest.raises(ValueError, match="callable"):
        register_one_shot("broken", None)
