"""Sequential mechanisms SAMA(f) and Independent(f): the paper's Example 2, the β schedule of
eq. (6), the state machine against rollouts, and feasibility of every round and of the horizon."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mechzoo.mechanisms.feasibility import is_feasible
from mechzoo.mechanisms.registry import OneShotMechanism, make_one_shot
from mechzoo.mechanisms.sequential import SAMA, BetaSchedule, Independent, SequentialState
from mechzoo.mechanisms.utility import total_utilities, utility
from mechzoo.mechanisms.validation import check_instance

# Example 2 of the SAMA paper: N = 2, M = 1, T = 2, B = 6, v = (1, 1);
# demands agent 1: (0, 4), agent 2: (2, 2). Shapes (T, N, M).
EX2_VALUES = np.ones((2, 1))
EX2_DEMANDS = np.array([[[0.0], [2.0]], [[4.0], [2.0]]])
EX2_BUDGET = np.array([6.0])


# --- Example 2 ------------------------------------------------------------------------------

def test_example2_sama_pf_accounts_for_the_past_allocation():
    a = SAMA("pf").rollout(EX2_VALUES, EX2_DEMANDS, EX2_BUDGET)
    np.testing.assert_allclose(a[:, :, 0], [[0, 2], [3, 1]], atol=1e-6)
    np.testing.assert_allclose(total_utilities(EX2_VALUES, EX2_DEMANDS, a), [3, 3], atol=1e-6)


def test_example2_independent_pf_ignores_the_past_allocation():
    a = Independent("pf").rollout(EX2_VALUES, EX2_DEMANDS, EX2_BUDGET)
    np.testing.assert_allclose(a[:, :, 0], [[0, 2], [2, 2]], atol=1e-6)
    np.testing.assert_allclose(total_utilities(EX2_VALUES, EX2_DEMANDS, a), [2, 4], atol=1e-6)


def test_mechanism_names():
    assert SAMA("pf").name == "sama(pf)"
    assert Independent(make_one_shot("equal")).name == "independent(equal)"


def test_validated_instance_path_gives_the_rule_on_the_same_reports():
    rng = np.random.default_rng(4)
    values, demands = rng.uniform(0.1, 1, (5, 3, 2)), rng.uniform(0, 1, (5, 3, 2))
    budget, past = np.array([1.0, 0.7]), rng.uniform(0, 0.3, (5, 3, 2))
    inst = check_instance(values, demands, budget, past)
    pf = make_one_shot("pf")
    assert pf.allocate_instance is not None
    np.testing.assert_array_equal(pf.allocate_checked(inst), pf.allocate(values, demands, budget, past))
    weighted = make_one_shot("pf", weights=np.array([1.0, 2.0, 3.0]))
    assert weighted.allocate_instance is None  # bound weights: the checked path falls back to allocate
    np.testing.assert_array_equal(weighted.allocate_checked(inst), weighted.allocate(values, demands, budget, past))
    equal = make_one_shot("equal")
    np.testing.assert_array_equal(equal.allocate_checked(inst), equal.allocate(values, demands, budget, past))


def test_sama_with_and_without_the_validated_path_agree():
    rng = np.random.default_rng(5)
    values, demands, budget = rng.uniform(0.1, 1, (4, 3, 2)), rng.uniform(0, 1, (4, 5, 3, 2)), np.array([2.0, 1.5])
    pf = make_one_shot("pf")
    plain = OneShotMechanism("pf_plain", pf.allocate)  # no allocate_instance
    np.testing.assert_array_equal(SAMA(pf).rollout(values, demands, budget),
                                  SAMA(plain).rollout(values, demands, budget))
    np.testing.assert_array_equal(Independent(pf).rollout(values, demands, budget),
                                  Independent(plain).rollout(values, demands, budget))


# --- state machine --------------------------------------------------------------------------

@pytest.mark.parametrize("mech", [SAMA("pf"), Independent("pf"), SAMA("equal")], ids=lambda m: m.name)
def test_rollout_equals_stepping_the_state_machine(mech):
    rng = np.random.default_rng(1)
    values, demands, budget = rng.uniform(0.1, 1, (3, 2)), rng.uniform(0, 1, (4, 3, 2)), np.array([2.0, 1.5])
    state = mech.reset(budget)
    assert state.t == 0 and state.past is None and state.values is None
    stepped = []
    for t in range(4):
        a, state = mech.step(state, demands[t], values)  # values after round 0 are ignored
        stepped.append(a)
        assert state.t == t + 1
    np.testing.assert_array_equal(mech.rollout(values, demands, budget), np.stack(stepped))
    np.testing.assert_allclose(state.past, np.sum(stepped, axis=0), rtol=1e-14)
    np.testing.assert_allclose(state.budget, budget - np.sum(stepped, axis=(0, 1)), atol=1e-14)
    np.testing.assert_array_equal(state.values, values)


def test_values_are_reported_once_and_ignored_later():
    mech = SAMA("pf")
    state = mech.reset(EX2_BUDGET)
    with pytest.raises(ValueError, match="values"):
        mech.step(state, EX2_DEMANDS[0])
    _, state = mech.step(state, EX2_DEMANDS[0], EX2_VALUES)
    a_stored, _ = mech.step(state, EX2_DEMANDS[1])
    a_other, _ = mech.step(state, EX2_DEMANDS[1], values=[[5.0], [0.1]])
    np.testing.assert_array_equal(a_stored, a_other)


@pytest.mark.parametrize("mech", [
    SAMA("pf", BetaSchedule.from_moments(0.5, 0.3, 0.0, horizon=3)), Independent("pf"), SAMA("proportional"),
], ids=lambda m: m.name)
def test_batch_rollout_equals_per_instance_rollouts(mech):
    rng = np.random.default_rng(2)
    values = rng.uniform(0.1, 1, (5, 3, 2))
    demands = rng.uniform(0, 1, (5, 3, 3, 2)) * (rng.random((5, 3, 3, 2)) < 0.7)
    budget = rng.uniform(0.5, 3, (5, 2))
    batched = mech.rollout(values, demands, budget)
    assert batched.shape == (5, 3, 3, 2)
    for k in range(5):
        np.testing.assert_allclose(batched[k], mech.rollout(values[k], demands[k], budget[k]), atol=1e-9)


def test_rollout_broadcasts_a_shared_budget_and_shared_values():
    demands = np.stack([EX2_DEMANDS, EX2_DEMANDS[:, ::-1]])
    a = SAMA("pf").rollout(EX2_VALUES, demands, EX2_BUDGET)
    assert a.shape == (2, 2, 2, 1)
    np.testing.assert_allclose(a[1], a[0][:, ::-1], atol=1e-6)


# --- β schedule (eq. 6) ---------------------------------------------------------------------

def test_constant_schedule_is_one_for_every_round():
    schedule = BetaSchedule.constant()
    assert schedule.horizon is None
    for t in (0, 7, 1000):
        np.testing.assert_array_equal(schedule.beta(t), 1.0)


def test_lambda_zero_with_iid_demand_spreads_the_budget_over_the_remaining_rounds():
    T = 5
    schedule = BetaSchedule.from_moments(np.full((2, 3), 0.4), 0.3, 0.0, horizon=T)
    for t in range(T):
        np.testing.assert_allclose(schedule.beta(t), np.full((2, 3), 1 / (T - t)), rtol=1e-14)


def test_large_lambda_gives_beta_one():
    # The paper's data: E[x] = 0.275, std(x) = 0.331; every λ >= 0.83 makes the bounds 0.
    schedule = BetaSchedule.from_moments(0.275, 0.331, 0.84, horizon=10)
    np.testing.assert_array_equal(schedule.betas, 1.0)


def test_per_round_moments_and_multipliers():
    mean = np.array([1.0, 2.0, 3.0])[:, None, None]
    std = np.array([1.0, 1.0, 1.0])[:, None, None]
    lam = np.array([9.0, 0.5, 1.0])  # λ^0 is never used: only later rounds enter the sum
    schedule = BetaSchedule.from_moments(mean, std, lam)
    assert schedule.horizon == 3
    expected = [1 / (1 + 1.5 + 2), 2 / (2 + 2), 1.0]
    np.testing.assert_allclose(schedule.betas.ravel(), expected, rtol=1e-14)


def test_zero_denominator_gives_beta_one():
    schedule = BetaSchedule.from_moments(0.0, 1.0, 0.0, horizon=3)
    np.testing.assert_array_equal(schedule.betas, 1.0)


def test_theorem3_multipliers():
    # λ^τ = sqrt((T - τ)/ξ): zero in the last round, so its lower bound is its mean, and
    # with the paper's data the earlier rounds' bounds are all 0.
    schedule = BetaSchedule.theorem3(0.275, 0.331, horizon=10, xi=0.1)
    np.testing.assert_allclose(schedule.betas.ravel(), [0.5] * 9 + [1.0], rtol=1e-14)
    lam = np.sqrt((10 - np.arange(1, 11)) / 0.1)
    direct = BetaSchedule.from_moments(0.2, 0.05, lam)
    np.testing.assert_array_equal(BetaSchedule.theorem3(0.2, 0.05, 10, 0.1).betas, direct.betas)


def test_sama_inflates_demand_by_the_agent_mean_beta():
    # β_i = mean over resources: agent 0 (0.25 + 0.75) / 2 = 0.5, agent 1 gets 1.
    betas = np.array([[[0.25, 0.75], [1.0, 1.0]]])
    mech = SAMA("equal", BetaSchedule(betas=betas, horizon=1))
    demands = np.ones((2, 2))
    a, _ = mech.step(mech.reset([1.0, 4.0]), demands, np.ones((2, 2)))
    # Inflated demands y = (2, 2) and (1, 1); the uniform rule gives c = [[0.5, 2], [0.5, 1]];
    # a = min(β_i c, x) = [[0.25, 1], [0.5, 1]].
    np.testing.assert_allclose(a, [[0.25, 1.0], [0.5, 1.0]], rtol=1e-14)


def test_zero_agent_beta_is_treated_as_one():
    betas = np.array([[[0.0], [1.0]]])
    mech = SAMA("equal", BetaSchedule(betas=betas, horizon=1))
    a, _ = mech.step(mech.reset([1.0]), np.ones((2, 1)), np.ones((2, 1)))
    np.testing.assert_allclose(a, [[0.5], [0.5]], rtol=1e-14)


# --- feasibility over the horizon -----------------------------------------------------------

ENTRY = st.one_of(st.just(0.0), st.sampled_from([1e-3, 1.0, 100.0]), st.floats(0, 5))


@st.composite
def sequential_instances(draw):
    """(values (N, M), demands (T, N, M), budget (M,)) with zero entries and ties."""
    t, n, m = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    values = draw(arrays(np.float64, (n, m), elements=ENTRY))
    demands = draw(arrays(np.float64, (t, n, m), elements=ENTRY))
    budget = draw(arrays(np.float64, (m,), elements=st.one_of(st.just(0.0), st.floats(0, 20))))
    return values, demands, budget


MECHANISMS = {
    f"{kind}-{name}": (kind, name)
    for kind in ("sama", "sama-lambda0", "independent") for name in ("pf", "pa", "equal", "proportional")
}


def build(kind: str, name: str, horizon: int):
    if kind == "independent":
        return Independent(name)
    if kind == "sama-lambda0":
        return SAMA(name, BetaSchedule.from_moments(0.5, 0.3, 0.0, horizon=horizon))
    return SAMA(name)


@pytest.mark.parametrize("key", MECHANISMS)
@settings(max_examples=60, deadline=None)
@given(instance=sequential_instances())
@example(instance=(np.full((1, 1), 1e-3), np.full((2, 1, 1), 1e-3), np.array([1e-300])))  # ulps left for round 2
@example(instance=(np.full((2, 1), 1e-3), np.array([[[2.0], [2e-256]]]), np.array([1.0])))
@example(instance=(np.zeros((3, 1)), np.array([[[1e-3], [1.0], [1.0]]]), np.array([2.22507386e-313])))  # subnormal budget
def test_every_round_and_the_horizon_are_feasible(key, instance):
    values, demands, budget = instance
    mech = build(*MECHANISMS[key], horizon=demands.shape[0])
    state = mech.reset(budget)
    allocations = []
    for t in range(demands.shape[0]):
        remaining = state.budget
        a, state = mech.step(state, demands[t], values if t == 0 else None)
        assert is_feasible(a, demands[t], remaining)
        assert np.all(state.budget >= 0)
        allocations.append(a)
    used = np.sum(allocations, axis=(0, 1))
    assert np.all(used <= budget * (1 + 1e-12))
    np.testing.assert_array_equal(np.stack(allocations), mech.rollout(values, demands, budget))


# --- utilities ------------------------------------------------------------------------------

def test_utility_is_clipped_linear():
    values = np.array([[1.0, 2.0], [0.5, 0.0]])
    demands = np.array([[1.0, 1.0], [2.0, 3.0]])
    allocation = np.array([[2.0, 0.5], [1.0, 3.0]])
    np.testing.assert_allclose(utility(values, demands, allocation), [1 + 1, 0.5])


def test_total_utility_sums_rounds():
    a = np.ones((3, 2, 1))
    np.testing.assert_allclose(total_utilities(np.ones((2, 1)), np.full((3, 2, 1), 0.5), a), [1.5, 1.5])


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("demands, match", [
    (np.ones((2, 1)), "demands"),                      # no round axis
    (np.ones((0, 2, 1)), "rounds T"),                  # T = 0
    (np.full((2, 2, 1), np.nan), "demands"),
    (np.ones((2, 3, 1)), "demands"),                   # N differs from values
])
def test_rollout_rejects_bad_demands(demands, match):
    with pytest.raises(ValueError, match=match):
        SAMA("equal").rollout(EX2_VALUES, demands, EX2_BUDGET)


def test_bad_arguments_raise_value_errors_naming_them():
    with pytest.raises(ValueError, match="budget"):
        SAMA("equal").reset([-1.0])
    with pytest.raises(ValueError, match="budget"):
        Independent("equal").rollout(EX2_VALUES, EX2_DEMANDS, [6.0, 1.0])
    with pytest.raises(ValueError, match="allowed names"):
        SAMA("nope")
    with pytest.raises(ValueError, match="beta_schedule"):
        SAMA("pf", beta_schedule=0.5)
    with pytest.raises(ValueError, match="state"):
        SAMA("pf").step((6.0,), EX2_DEMANDS[0], EX2_VALUES)
    with pytest.raises(ValueError, match="horizon"):
        BetaSchedule.from_moments(0.5, 0.3, 1.0)
    with pytest.raises(ValueError, match="horizon"):
        BetaSchedule.from_moments(np.ones((3, 1, 1)), 0.3, 1.0, horizon=4)
    with pytest.raises(ValueError, match="lam"):
        BetaSchedule.from_moments(0.5, 0.3, -1.0, horizon=2)
    with pytest.raises(ValueError, match="xi"):
        BetaSchedule.theorem3(0.5, 0.3, horizon=4, xi=1.5)
    with pytest.raises(ValueError, match="horizon"):
        BetaSchedule.theorem3(0.5, 0.3, horizon=0, xi=0.1)
    with pytest.raises(ValueError, match="betas"):
        BetaSchedule(betas=np.full((1, 1, 1), 1.5), horizon=None)
    with pytest.raises(ValueError, match="betas"):
        BetaSchedule(betas=np.ones((2, 1, 1)), horizon=3)
    with pytest.raises(ValueError, match="beta_schedule"):
        SAMA("equal", BetaSchedule(betas=np.ones((1, 3, 1)), horizon=None)).rollout(EX2_VALUES, EX2_DEMANDS, EX2_BUDGET)


def test_rounds_beyond_the_schedule_horizon_are_rejected():
    mech = SAMA("equal", BetaSchedule.from_moments(0.5, 0.3, 0.0, horizon=1))
    with pytest.raises(ValueError, match="horizon"):
        mech.rollout(EX2_VALUES, EX2_DEMANDS, EX2_BUDGET)


def test_state_is_immutable():
    state = SAMA("equal").reset(EX2_BUDGET)
    assert isinstance(state, SequentialState)
    with pytest.raises(AttributeError):
        state.t = 3
