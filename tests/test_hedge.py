"""Hedge: the learning rate, the update, full-information payoffs, dynamics, seeding and resume."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mechzoo.agents.dynamics import hedge_dynamics
from mechzoo.agents.hedge import HedgePolicy, counterfactual_payoffs
from mechzoo.agents.nash_conv import nash_conv, profile_types
from mechzoo.agents.oracles import ReportSpace
from mechzoo.agents.policies import bind
from mechzoo.agents.sequential_oracles import ScalingMisreports, full_best_response
from mechzoo.envs import SequentialAllocationEnv
from mechzoo.mechanisms.sequential import SAMA

GRID = ScalingMisreports(value_factors=(0.5, 1.0, 2.0), demand_factors=(1.0, 1.5))
GAME = dict(n_resources=1, horizon=2)


def test_default_learning_rate_is_the_standard_schedule():
    h = HedgePolicy(2, horizon=50, payoff_range=2.0)
    assert len(h.probabilities) == 100
    assert h.learning_rate == pytest.approx(math.sqrt(8 * math.log(100) / 50) / 2.0)
    with pytest.raises(ValueError, match="horizon"):
        HedgePolicy(2)
    with pytest.raises(ValueError, match="payoffs"):
        h.update(np.zeros(3))


@settings(max_examples=25, deadline=None)
@given(payoffs=st.lists(st.floats(-1, 1), min_size=6, max_size=6), shift=st.floats(-5, 5))
def test_update_is_multiplicative_weights_and_shift_invariant(payoffs, shift):
    a, b = HedgePolicy(1, GRID, learning_rate=0.5), HedgePolicy(1, GRID, learning_rate=0.5)
    a.update(payoffs)
    b.update(np.asarray(payoffs) + shift)
    expected = np.exp(0.5 * np.asarray(payoffs))
    np.testing.assert_allclose(a.probabilities, expected / expected.sum(), rtol=1e-9)
    np.testing.assert_allclose(a.probabilities, b.probabilities, rtol=1e-9)


def test_counterfactual_payoffs_against_truthful_others_match_full_best_response():
    values, demands = profile_types(dict(horizon=3), 10, 0)
    fv, fx = GRID.factors(2)
    budget = np.full(2, 1.5)
    payoffs = counterfactual_payoffs(SAMA("pf"), values, demands, budget, values, demands, 0, fv, fx, GRID.space)
    ref = full_best_response(SAMA("pf"), values, demands, budget, GRID, agents=[0])
    truthful_arm = int(np.flatnonzero((fv == 1).all(1) & (fx == 1).all(1))[0])
    np.testing.assert_allclose(payoffs.max(1) - payoffs[:, truthful_arm], ref.gain[:, 0], atol=1e-12)


def test_hedge_nash_conv_matches_the_env_search_oracle():
    """The dynamics' NashConv from counterfactual payoffs is nash_conv's search on the same arms."""
    values, demands = profile_types(GAME, 6, 3)
    learners = [HedgePolicy(1, GRID, learning_rate=1.0, play="greedy") for _ in range(2)]
    learners[0].update(np.arange(6.0))        # agent_0 plays arm 5, agent_1 arm 0
    learners[1].update(-np.arange(6.0))
    fv, fx = learners[0].value_factors, learners[0].demand_factors
    arms = np.array([5, 0])
    rv, rx = GRID.space.clip(values * fv[arms], demands * fx[arms])
    mech, budget = SAMA("pf"), np.full(1, 1.0)
    gains = []
    for i in range(2):
        p = counterfactual_payoffs(mech, values, demands, budget, rv, rx, i, fv, fx, GRID.space)
        gains.append(p.max(1) - p[:, arms[i]])
    est = nash_conv(GAME, dict(zip(["agent_0", "agent_1"], learners)), types=(values, demands), misreports=GRID,
                    progress=False)
    np.testing.assert_allclose(est.gains, np.stack(gains, 1), atol=1e-9)


def test_hedge_policy_holds_its_arm_over_the_episode():
    env = SequentialAllocationEnv(n_resources=1, horizon=3)
    policy = bind(HedgePolicy(1, GRID, horizon=10, seed=4), env)
    obs, _ = env.reset(seed=0)
    policy.reset(seed=1)
    first = policy.act(obs["agent_0"], "agent_0")
    arm = policy._arms.copy()
    env.step({"agent_0": first, "agent_1": np.zeros(2)})
    policy.act(env.step({"agent_0": first, "agent_1": np.zeros(2)})[0]["agent_0"], "agent_0")
    np.testing.assert_array_equal(policy._arms, arm)


def test_dynamics_are_seeded_resumable_and_move_towards_better_play(tmp_path):
    kwargs = dict(iterations=4, profiles=8, misreports=GRID, learning_rate=2.0, progress=False)
    full = hedge_dynamics(GAME, seed=1, out=tmp_path / "a", **kwargs)
    again = hedge_dynamics(GAME, seed=1, out=tmp_path / "b", **kwargs)
    assert full == again
    hedge_dynamics(GAME, seed=1, out=tmp_path / "c", **{**kwargs, "iterations": 2})
    resumed = hedge_dynamics(GAME, seed=1, out=tmp_path / "c", resume=True, **kwargs)
    assert resumed == full
    assert hedge_dynamics(GAME, seed=2, out=tmp_path / "d", **kwargs) != full
    for name in ("history.csv", "history.png", "checkpoint.json"):
        assert (tmp_path / "a" / name).stat().st_size > 0
    assert all(row["nash_conv"] >= 0 and row["report_distance"] >= 0 for row in full)


def test_report_space_is_respected():
    h = HedgePolicy(1, ScalingMisreports(value_factors=(1.0, 4.0), demand_factors=(1.0,),
                                         space=ReportSpace(0.1, 1.0, 1.0)), learning_rate=1.0, play="greedy")
    h.update([0.0, 1.0])  # prefer value x 4, clipped to 1.0
    env = SequentialAllocationEnv(n_resources=1, horizon=1, report_mode="absolute")
    obs, _ = env.reset(seed=0)
    action = bind(h, env).act(obs["agent_0"], "agent_0")
    assert action[0] == pytest.approx(min(4 * env.true_values[0, 0], 1.0))
