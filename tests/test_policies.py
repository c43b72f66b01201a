"""The policy protocol: scripted policies in both report modes, both game forms, and rollouts."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mechzoo.agents.policies import (GameSpec, Policy, ScalingPolicy, TruthfulPolicy, bind, game_kwargs,
                                     profile_for, rollout)
from mechzoo.envs import BatchedSequentialAllocation, SequentialAllocationEnv

MODES = ("relative", "absolute")


@pytest.mark.parametrize("mode", MODES)
def test_truthful_policy_reports_the_truth_in_both_modes(mode):
    env = SequentialAllocationEnv(report_mode=mode, horizon=3)
    obs, _ = env.reset(seed=0)
    policy = bind(TruthfulPolicy(), env)
    assert isinstance(policy, Policy)
    expected = env.truthful_actions()
    for agent in env.agents:
        np.testing.assert_array_equal(policy.act(obs[agent], agent), expected[agent])
    result = rollout(env, TruthfulPolicy(), episodes=2, seed=3)
    assert result.utility.shape == (2, 2)
    np.testing.assert_array_equal(result.gain, 0.0)
    np.testing.assert_array_equal(result.report_distance, 0.0)


@pytest.mark.parametrize("mode", MODES)
def test_scaling_policy_reports_scaled_truth(mode):
    env = SequentialAllocationEnv(report_mode=mode, horizon=2)
    obs, _ = env.reset(seed=1)
    policy = bind(ScalingPolicy([0.5, 1.0], 1.0), env)
    _, _, _, _, infos = env.step({a: policy.act(obs[a], a) for a in env.agents})
    v = env.true_values
    np.testing.assert_allclose(infos["agent_0"]["reported_values"], np.clip(v[0] * [0.5, 1.0], 0.1, 1.0), rtol=1e-6)
    np.testing.assert_allclose(infos["agent_1"]["reported_demands"], env.true_demands[0, 1], rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), factor=st.floats(0.3, 3.0), mode=st.sampled_from(MODES))
def test_parallel_and_batched_rollouts_agree(seed, factor, mode):
    """Instance k of the batched game reproduces episode k of the parallel game for any profile."""
    profile = {"agent_0": ScalingPolicy.inflate(factor, "both"), "agent_1": ScalingPolicy.shade(0.7)}
    single = rollout(SequentialAllocationEnv(report_mode=mode, horizon=3), profile, episodes=3, seed=seed)
    batched = rollout(BatchedSequentialAllocation(3, report_mode=mode, horizon=3), profile, seed=seed)
    for field in ("utility", "truthful_utility", "report_distance"):
        np.testing.assert_allclose(getattr(single, field), getattr(batched, field), rtol=1e-9, atol=1e-12)
    assert np.all(batched.report_distance[:, 1] > 0)


def test_batched_policy_shapes_and_given_types():
    benv = BatchedSequentialAllocation(4, horizon=2, report_mode="absolute")
    obs, _ = benv.reset(seed=0)
    spec = GameSpec.of(benv)
    actions = bind(ScalingPolicy.inflate(), benv).act(obs[:, 0], "agent_0")
    assert actions.shape == (4, 4)
    assert np.all(actions >= spec.action_low) and np.all(actions <= spec.action_high)
    values, demands = np.full((4, 2, 2), 0.5), np.full((4, 2, 2, 2), 0.25)
    result = rollout(benv, TruthfulPolicy(), options={"values": values, "demands": demands})
    np.testing.assert_allclose(result.utility, 2 * 0.5 * 0.25 * 2)  # every demand met: B = 2 per resource


def test_bad_profiles_and_unbound_policies_are_value_errors():
    env = SequentialAllocationEnv(horizon=2)
    with pytest.raises(ValueError, match="missing"):
        profile_for(env, {"agent_0": TruthfulPolicy()})
    with pytest.raises(ValueError, match="not bound"):
        TruthfulPolicy().act(np.zeros(9), "agent_0")
    with pytest.raises(ValueError, match="act"):
        bind(object(), env)
    with pytest.raises(ValueError, match="value_factors"):
        ScalingPolicy([-1.0, 1.0])
    with pytest.raises(ValueError, match="episodes"):
        rollout(env, TruthfulPolicy(), episodes=0)
    with pytest.raises(ValueError, match="outside"):
        env.reset(options={"values": np.full((2, 2), 5.0), "demands": np.zeros((2, 2, 2))})


def test_game_kwargs_rebuild_the_game():
    env = SequentialAllocationEnv(n_agents=3, horizon=4, meta="independent", one_shot="pa", budget=[1.0, 2.0])
    rebuilt = BatchedSequentialAllocation(2, **game_kwargs(env))
    for field in ("n_agents", "n_resources", "horizon", "meta", "one_shot", "report_mode", "report_bound"):
        assert getattr(rebuilt.config, field) == getattr(env.config, field)
    np.testing.assert_array_equal(rebuilt.config.budget, env.config.budget)
    assert GameSpec.of(rebuilt).agents == GameSpec.of(env).agents
