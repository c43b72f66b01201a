"""The single-agent Gymnasium view: checkers, seeding, rewards, episode end."""
from gymnasium.utils.env_checker import check_env as gym_check_env
import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from mechzoo.agents.best_response_env import BestResponseEnv
from mechzoo.agents.policies import ScalingPolicy, TruthfulPolicy
from mechzoo.envs import OneShotAllocationEnv, SequentialAllocationEnv


@pytest.mark.parametrize("mode", ["relative", "absolute"])
@pytest.mark.parametrize("normalized", [True, False])
def test_passes_gymnasium_and_sb3_checkers(mode, normalized):
    kwargs = dict(horizon=3, report_mode=mode)
    gym_check_env(BestResponseEnv(kwargs, normalized=normalized), skip_render_check=True)
    sb3_check_env(BestResponseEnv(kwargs, reward="gain", normalized=normalized), warn=False)


def test_seeded_resets_reproduce_trajectories():
    def trajectory(seed):
        env = BestResponseEnv(dict(horizon=4), learner="agent_1", opponents=ScalingPolicy.inflate(1.5), reward="gain")
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(0)
        out = [obs]
        for _ in range(2):  # two episodes: the second reset continues from the seeded generator
            done = False
            while not done:
                obs, r, term, trunc, _ = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
                out += [obs, np.array([r])]
                done = term or trunc
            out.append(env.reset()[0])
        return np.concatenate(out)

    np.testing.assert_array_equal(trajectory(7), trajectory(7))
    assert not np.array_equal(trajectory(7), trajectory(8))


def test_gain_reward_sums_to_cumulative_gain_and_horizon_terminates():
    env = BestResponseEnv(dict(horizon=5, budget_scale=0.2), reward="gain", opponents={"agent_1": TruthfulPolicy()})
    env.reset(seed=2)
    total, steps, done = 0.0, 0, False
    while not done:
        obs, r, term, trunc, info = env.step(np.array([1.0, -1.0, -1.0, -1.0], dtype=np.float32))
        total, steps = total + r, steps + 1
        done = term or trunc
    assert (steps, term, trunc) == (5, True, False)
    assert total == pytest.approx(info["cumulative_gain"])
    assert total != 0.0
    truncated = BestResponseEnv(SequentialAllocationEnv(horizon=5, max_cycles=2))
    truncated.reset(seed=0)
    truncated.step(np.zeros(4, np.float32))
    assert truncated.step(np.zeros(4, np.float32))[2:4] == (False, True)


def test_zero_action_is_truthful_and_fixed_types():
    values = np.array([[1.0, 0.5], [1.0, 0.25]])
    demands = np.ones((1, 2, 2))
    env = BestResponseEnv(OneShotAllocationEnv(budget=1.0), types=(values, demands))
    env.reset(seed=0)
    _, reward, term, _, info = env.step(np.zeros(4, np.float32))
    np.testing.assert_allclose(info["allocation"], [0.25, 1.0], atol=1e-6)  # the RPF-Net paper's Figure 1
    assert term and info["gain"] == 0.0 and reward == pytest.approx(0.75, abs=1e-6)


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="learner"):
        BestResponseEnv(learner="agent_9")
    with pytest.raises(ValueError, match="reward"):
        BestResponseEnv(reward="welfare")
    with pytest.raises(ValueError, match="must not include the learner"):
        BestResponseEnv(opponents={"agent_0": TruthfulPolicy(), "agent_1": TruthfulPolicy()})
    with pytest.raises(ValueError, match="missing"):
        BestResponseEnv(dict(n_agents=3), opponents={"agent_1": TruthfulPolicy()})
    env = BestResponseEnv()
    with pytest.raises(ValueError, match="before reset"):
        env.step(np.zeros(4))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0, 0, 0]))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3))


@pytest.mark.parametrize("normalized", [True, False])
def test_full_information_view_appends_the_type_profile(normalized):
    kwargs = dict(n_agents=3, n_resources=2, horizon=4)
    sb3_check_env(BestResponseEnv(kwargs, observe_types=True, normalized=normalized), warn=False)
    env = BestResponseEnv(kwargs, observe_types=True, normalized=normalized)
    plain = BestResponseEnv(kwargs, normalized=normalized)
    obs, _ = env.reset(seed=5)
    plain_obs, _ = plain.reset(seed=5)
    assert obs.shape == (plain_obs.size + 3 * 2 * (1 + 4),)
    np.testing.assert_array_equal(obs[:plain_obs.size], plain_obs)
    types = np.concatenate([env.game.true_values.ravel(), env.game.true_demands.ravel()])
    np.testing.assert_allclose(obs[plain_obs.size:], types, rtol=1e-6)  # the papers' support bounds are 1


@pytest.mark.parametrize("mode", ["relative", "absolute"])
def test_values_only_deviations_report_demands_truthfully(mode):
    env = BestResponseEnv(dict(horizon=3, report_mode=mode), fields="values", reward="gain")
    env.reset(seed=1)
    _, _, _, _, info = env.step(np.array([1.0, -1.0, -1.0, 1.0], dtype=np.float32))
    np.testing.assert_allclose(info["reported_demands"], info["true_demands"], rtol=1e-6)
    assert not np.allclose(info["reported_values"], env.game.true_values[0], rtol=1e-3)
    with pytest.raises(ValueError, match="fields"):
        BestResponseEnv(fields="bids")
