"""Best-response oracles and one-shot exploitability."""
import numpy as np
import pytest

from mechzoo.agents import DemandPatternOracle, GradientOracle, GridOracle, RandomOracle, ReportSpace, ValuePatternOracle
from mechzoo.metrics import one_shot_exploitability, summarize_gains

FIG1_VALUES = np.array([[1.0, 0.5], [1.0, 0.25]])


@pytest.mark.parametrize("oracle", [GridOracle(81), RandomOracle(4000), GradientOracle(4, 150, 0.01)],
                         ids=["grid", "random", "gradient"])
def test_rpf_figure1_exploitability(oracle):
    """RPF-Net paper Fig. 1: agent 1 gains 0.125 (supremum) by shading its second value; agent 2 nothing."""
    result = oracle.best_response("pf", FIG1_VALUES, np.ones((2, 2)), np.ones(2))
    assert result.gain[0] == pytest.approx(0.125, abs=1e-3)
    assert result.gain[1] == pytest.approx(0.0, abs=1e-6)
    ratio = result.values[0, 1] / result.values[0, 0]
    assert 0.25 <= ratio < 0.26  # just above the critical ratio v_22 / v_21 = 1/4


def test_gain_is_never_negative_and_truth_is_a_candidate():
    rng = np.random.default_rng(0)
    v, x = rng.uniform(0.1, 1, (20, 2, 2)), rng.uniform(0.1, 1, (20, 2, 2))
    result = RandomOracle(64, seed=1).best_response("pf", v, x, np.ones(2))
    assert result.gain.shape == (20, 2) and np.all(result.gain >= 0)


def test_uniform_rule_is_not_exploitable_by_demand_misreports():
    """The uniform rule is strategy-proof for demands (Sprumont 1991): no misreport helps."""
    rng = np.random.default_rng(2)
    v, x = rng.uniform(0.1, 1, (30, 3, 1)), rng.uniform(0.0, 1, (30, 3, 1))
    oracle = GridOracle(101, ReportSpace(fields="demands"))
    assert oracle.best_response("equal", v, x, np.ones(1)).gain.max() <= 1e-9


@pytest.mark.parametrize("m", [1, 2, 3])
def test_demand_patterns_drop_keep_or_claim_each_demand(m):
    """3**M - 1 candidates: true values, each demand 0, truthful or the box's top, the truth left out."""
    rng = np.random.default_rng(m)
    v, x = rng.uniform(0.1, 1, (5, 2, m)), rng.uniform(0.1, 0.9, (5, 2, m))
    cand_v, cand_x = DemandPatternOracle(ReportSpace(demand_high=1.0)).candidates(v, x, 1)
    assert cand_v.shape == cand_x.shape == (5, 3 ** m - 1, m)
    assert np.array_equal(cand_v, np.broadcast_to(v[:, None, 1], cand_v.shape))
    level = np.where(cand_x == 0, 0, np.where(cand_x == 1.0, 2, np.where(cand_x == x[:, None, 1], 1, -1)))
    assert (level >= 0).all()  # every demand is one of the three levels
    patterns = {tuple(row) for row in level[0]}
    assert len(patterns) == 3 ** m - 1 and (1,) * m not in patterns
    with pytest.raises(ValueError, match="changes demands"):
        DemandPatternOracle(ReportSpace(fields="values"))


def test_demand_patterns_find_the_shipped_rpf_nets_demand_lever_that_pf_lacks():
    """Under PF a demand misreport alone gains nothing; RPF-Net's learned price reads the reported
    demands, so dropping or claiming a demand pays on some profiles."""
    from mechzoo.agents.mechanism_training import training_data

    v, x, b = training_data("paper", np.random.default_rng(777), 400, 2, 2)
    oracle = DemandPatternOracle()
    assert oracle.best_response("pf", v, x, b).gain.max() <= 1e-9
    assert oracle.best_response("rpf_net", v, x, b).gain.mean() > 1e-4


@pytest.mark.parametrize("m", [1, 3])
def test_value_patterns_scale_down_each_subset_of_the_true_values(m):
    """(2**M - 1) * len(factors) candidates: true demands, one subset's values times one factor, clipped."""
    rng = np.random.default_rng(m)
    v, x = rng.uniform(0.1, 1, (5, 2, m)), rng.uniform(0.0, 1, (5, 2, m))
    cand_v, cand_x = ValuePatternOracle(factors=(0.2, 0.5)).candidates(v, x, 1)
    assert cand_v.shape == cand_x.shape == (5, (2 ** m - 1) * 2, m)
    assert np.array_equal(cand_x, np.broadcast_to(x[:, None, 1], cand_x.shape))
    ratio = cand_v / v[:, None, 1]
    scaled = ~np.isclose(cand_v, v[:, None, 1])
    assert np.all(np.isclose(ratio, 1) | np.isclose(ratio, 0.2) | np.isclose(ratio, 0.5) | np.isclose(cand_v, 0.1))
    assert scaled.any(axis=2).all()  # every candidate changes something
    assert len({tuple(row) for row in scaled[0]}) == 2 ** m - 1  # each non-empty subset once
    assert cand_v.min() >= 0.1
    for bad in ((), (0.5, 1.0), (0.0,)):
        with pytest.raises(ValueError, match="factors"):
            ValuePatternOracle(factors=bad)
    with pytest.raises(ValueError, match="changes values"):
        ValuePatternOracle(ReportSpace(fields="demands"))
    with pytest.raises(ValueError, match="max_candidates"):
        ValuePatternOracle(max_candidates=10).candidates(rng.uniform(0.1, 1, (1, 2, 4)), np.ones((1, 2, 4)), 0)


def test_value_patterns_carry_nearly_all_of_pfs_exploitability_at_10x3():
    """At 10x3 with b = 5 the resources one receives in full make a free lever under PF: the value
    patterns (28 candidates) find nearly what the gradient oracle finds on over-demanded profiles."""
    from mechzoo.agents.mechanism_training import contended_training_data

    v, x, b = contended_training_data("paper", np.random.default_rng(4242), 60, 10, 3)
    patterns = one_shot_exploitability("pf", v, x, b, ValuePatternOracle()).mean
    search = one_shot_exploitability("pf", v, x, b, GradientOracle(8, 100, 0.01, seed=4242)).mean
    assert search > 1e-3 and patterns >= 0.9 * search


def test_summary_confidence_interval():
    gains = np.array([[0.0, 0.2], [0.2, 0.0], [0.1, 0.1]])
    est = summarize_gains(gains, "test")
    np.testing.assert_allclose(est.per_agent, [0.1, 0.1])
    assert est.mean == pytest.approx(0.1) and est.mean_ci == pytest.approx(0.0)
    assert "test" in str(est)


def test_one_shot_exploitability_labels_the_oracle():
    est = one_shot_exploitability("pf", FIG1_VALUES, np.ones((2, 2)), np.ones(2), GridOracle(41))
    assert est.oracle.startswith("grid(41")
    assert est.per_agent[0] > 0.1


def test_invalid_oracle_arguments():
    with pytest.raises(ValueError, match="fields"):
        ReportSpace(fields="bids")
    with pytest.raises(ValueError, match="max_candidates"):
        GridOracle(41, ReportSpace(fields="both")).best_response("pf", np.ones((2, 3)), np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match="differentiable"):
        GradientOracle().best_response("pa", FIG1_VALUES, np.ones((2, 2)), np.ones(2))


def test_partial_allocation_with_demand_caps_is_manipulable():
    """Counterexample (docs/mechanisms.md): over-reporting a demand raises agent 1's true utility under PA."""
    from mechzoo.mechanisms import partial_allocation
    from mechzoo.mechanisms.utility import utility

    v = np.array([[1.0, 1.0], [1.0, 0.25]])
    x = np.array([[0.5, 0.5], [1.0, 1.0]])
    b = np.ones(2)
    truthful = utility(v, x, partial_allocation(v, x, b))[0]
    lie_v, lie_x = v.copy(), x.copy()
    lie_v[0], lie_x[0] = (1.0, 0.5), (0.5, 1.0)
    a = partial_allocation(lie_v, lie_x, b)
    np.testing.assert_allclose(a[0], [0.15, 0.6], atol=1e-8)
    assert truthful == pytest.approx(0.528125, abs=1e-8)
    assert utility(v, x, a)[0] - truthful == pytest.approx(0.121875, abs=1e-8)
    found = RandomOracle(3000, ReportSpace(fields="both"), seed=1).best_response("pa", v, x, b)
    assert found.gain[0] > 0.12


def test_fully_served_agents_are_not_searched():
    """An agent that the truthful allocation gives its whole demand cannot gain: the oracle skips it
    (the mechanism sees only the truthful call and agent 0's candidates) and reports a zero gain."""
    from mechzoo.mechanisms import make_one_shot
    from mechzoo.mechanisms.registry import OneShotMechanism

    pf = make_one_shot("pf")
    batches = []

    def spy(values, demands, budget, past=None):
        batches.append(np.shape(values)[:-2])
        return pf.allocate(values, demands, budget, past)

    mechanism = OneShotMechanism("spy", spy)
    # Profile 0: resource 0 over-demanded, agent 0 short, agent 1 capped at 0.2; profile 1: nothing contested.
    v = np.array([[[1.0, 0.5], [1.0, 0.25]], [[1.0, 0.5], [1.0, 0.25]]])
    x = np.array([[[1.0, 1.0], [0.2, 0.0]], [[0.3, 0.4], [0.5, 0.6]]])
    result = RandomOracle(16, seed=0).best_response(mechanism, v, x, np.ones(2))
    assert batches == [(2,), (1, 16)]  # truthful call, then agent 0 of profile 0 only
    np.testing.assert_array_equal(result.gain[1], 0.0)
    assert result.gain[0, 1] == 0.0
    np.testing.assert_array_equal(result.values[1], v[1])


def test_gradient_oracle_from_the_truth_is_a_local_ascent():
    """The paper's protocol: one ascent from the truthful report. On Fig. 1 it walks agent 1's value
    ratio down to the critical 1/4 (gain -> 0.125); agent 2's truthful report is a local optimum."""
    oracle = GradientOracle(gd_iter=200, from_truth=True)
    assert oracle.label.startswith("gradient(from the truth, 200 Adam steps")
    result = oracle.best_response("pf", FIG1_VALUES, np.ones((2, 2)), np.ones(2))
    assert result.gain[0] == pytest.approx(0.125, abs=2e-3)
    assert result.gain[1] == pytest.approx(0.0, abs=1e-9)
    # With no ascent steps it scores the truth only: no gain anywhere.
    assert GradientOracle(gd_iter=0, from_truth=True).best_response(
        "pf", FIG1_VALUES, np.ones((2, 2)), np.ones(2)).gain.max() == 0.0
