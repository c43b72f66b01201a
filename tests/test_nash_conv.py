"""NashConv: the search oracle against full_best_response, general-sum sums, confidence intervals."""
import numpy as np
import pytest

from mechzoo.agents.nash_conv import nash_conv, profile_types
from mechzoo.agents.policies import ScalingPolicy, TruthfulPolicy
from mechzoo.agents.sequential_oracles import ScalingMisreports, full_best_response
from mechzoo.mechanisms.sequential import SAMA, Independent
from mechzoo.metrics import summarize_nash_conv

SMALL = ScalingMisreports(value_factors=(0.5, 1.0, 2.0), demand_factors=(1.0, 2.0))


@pytest.mark.parametrize("meta, mechanism, mode", [("sama", SAMA("pf"), "relative"),
                                                   ("independent", Independent("pf"), "absolute")])
def test_truthful_nash_conv_is_the_sum_of_full_best_response_gains(meta, mechanism, mode):
    game = dict(horizon=3, meta=meta, report_mode=mode)
    est = nash_conv(game, TruthfulPolicy(), profiles=24, seed=5, misreports=SMALL, progress=False)
    values, demands = profile_types(game, 24, 5)
    ref = full_best_response(mechanism, values, demands, np.full(2, 0.5 * 2 * 3 / 2), SMALL)
    np.testing.assert_allclose(est.gains, ref.gain, atol=1e-8)
    assert est.nash_conv == pytest.approx(ref.gain.sum(axis=1).mean(), abs=1e-8)
    assert est.nash_conv > 0  # PF is manipulable, so the test can fail
    np.testing.assert_allclose(est.on_policy, ref.truthful_utility, rtol=1e-9)


def test_nash_conv_of_a_misreporting_profile_and_given_types():
    game = dict(horizon=3)
    values, demands = profile_types(game, 16, 0)
    profile = {"agent_0": ScalingPolicy.inflate(2.0, "both"), "agent_1": TruthfulPolicy()}
    est = nash_conv(game, profile, types=(values, demands), misreports=SMALL, progress=False)
    assert est.gains.shape == (16, 2) and np.all(est.gains >= 0)
    # agent_0 gains by returning to (or near) the truth: its gain is at least its loss from misreporting
    truthful = nash_conv(game, TruthfulPolicy(), types=(values, demands), misreports=SMALL, agents=[1],
                         progress=False)
    loss = truthful.on_policy[:, 0] - est.on_policy[:, 0]
    assert np.all(est.gains[:, 0] >= loss - 1e-9) and loss.mean() > 0
    assert est.nash_conv == pytest.approx(est.per_agent.sum())
    np.testing.assert_array_equal(truthful.gains[:, 0], 0.0)


def test_summary_is_a_sum_with_confidence_intervals():
    gains = np.array([[0.1, 0.3], [0.3, 0.1], [0.2, 0.2]])
    est = summarize_nash_conv(gains, np.ones((3, 2)), "test")
    assert est.nash_conv == pytest.approx(0.4)  # summed over agents, not averaged
    assert est.nash_conv_ci == pytest.approx(0.0, abs=1e-12)  # every profile sums to 0.4
    assert est.per_agent_ci[0] > 0 and "test" in str(est)


def test_bad_arguments():
    with pytest.raises(ValueError, match="oracle"):
        nash_conv({}, TruthfulPolicy(), search=False)
    with pytest.raises(ValueError, match="profiles"):
        nash_conv({}, TruthfulPolicy(), profiles=0)
    with pytest.raises(ValueError, match="agents"):
        nash_conv(dict(horizon=1), TruthfulPolicy(), profiles=2, agents=[5])


def test_ppo_oracle_in_every_view_adds_a_learned_best_response():
    """NashConv with the PPO oracle alone: its gains are the learned policy's utility minus the
    profile's, also for a full-information, values-only policy (evaluated in its own view)."""
    import torch

    from mechzoo.agents.rl import PPOBestResponse

    torch.set_num_threads(1)
    game = dict(horizon=2)
    oracle = PPOBestResponse(64, seed=0, train_on="profiles", observe_types=True, fields="values")
    est = nash_conv(game, TruthfulPolicy(), profiles=8, seed=3, rl_oracle=oracle, search=False, agents=[0],
                    progress=False)
    assert est.oracle == oracle.label
    assert np.all(np.isfinite(est.gains)) and np.all(est.gains[:, 1] == 0.0)
    direct = oracle.best_response(game, TruthfulPolicy(), profiles=8, seed=3, agents=[0])
    np.testing.assert_allclose(est.gains[:, 0], direct.gain[:, 0], atol=1e-12)
