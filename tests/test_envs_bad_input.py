"""Bad input to the games: ValueErrors that name the agent and the field, or say what is allowed."""
from __future__ import annotations

import numpy as np
import pytest

from mechzoo.envs import OneShotAllocationEnv, SequentialAllocationEnv, UniformBernoulliTypes


@pytest.fixture
def env():
    e = SequentialAllocationEnv(n_agents=3, n_resources=2, horizon=3)
    e.reset(seed=0)
    return e


def _zeros(env):
    return {a: np.zeros(4, dtype=np.float32) for a in env.agents}


@pytest.mark.parametrize("bad,field", [(np.nan, r"values\[0\]"), (np.inf, r"values\[1\]"), (-np.inf, r"demands\[0\]"),
                                       (np.nan, r"demands\[1\]")])
def test_non_finite_actions_name_agent_and_field(env, bad, field):
    acts = _zeros(env)
    k = {r"values\[0\]": 0, r"values\[1\]": 1, r"demands\[0\]": 2, r"demands\[1\]": 3}[field]
    acts["agent_2"][k] = bad
    with pytest.raises(ValueError, match=rf"agent_2.*{field}.*finite"):
        env.step(acts)


def test_bad_action_structure(env):
    acts = _zeros(env)
    acts["agent_1"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"agent_1.*shape \(3,\).*expected \(4,\)"):
        env.step(acts)
    acts = _zeros(env)
    acts["agent_1"] = "lots"
    with pytest.raises(ValueError, match="agent_1.*numeric"):
        env.step(acts)
    acts = _zeros(env)
    acts["agent_7"] = np.zeros(4)
    with pytest.raises(ValueError, match="unknown agent 'agent_7'"):
        env.step(acts)
    acts = _zeros(env)
    del acts["agent_0"]
    with pytest.raises(ValueError, match="missing action for live agent 'agent_0'"):
        env.step(acts)
    with pytest.raises(ValueError, match="dict"):
        env.step([np.zeros(4)] * 3)
    with pytest.raises(ValueError, match="unknown agent"):
        env.action_space("nobody")
    with pytest.raises(ValueError, match="unknown agent"):
        env.observation_space(3)
    # a rejected step leaves the game untouched
    obs, _, _, _, info = env.step(_zeros(env))
    assert info["agent_0"]["round"] == 0


def test_step_before_reset():
    with pytest.raises(ValueError, match="reset"):
        SequentialAllocationEnv().step({"agent_0": np.zeros(4), "agent_1": np.zeros(4)})


def test_out_of_range_clipped_or_strict():
    env = SequentialAllocationEnv(n_agents=2, n_resources=2, horizon=2, strict=True)
    env.reset(seed=0)
    acts = {"agent_0": np.zeros(4), "agent_1": np.array([0.0, 0.0, -3.0, 0.0])}
    with pytest.raises(ValueError, match=r"agent_1.*demands\[0\].*outside.*strict"):
        env.step(acts)
    lenient = SequentialAllocationEnv(n_agents=2, n_resources=2, horizon=2)
    lenient.reset(seed=0)
    _, _, _, _, info = lenient.step(acts)
    assert info["agent_1"]["clipped"] == 1 and info["agent_0"]["clipped"] == 0


@pytest.mark.parametrize("kwargs,message", [
    (dict(n_agents=0), "n_agents.*>= 1"),
    (dict(n_agents=2.5), "n_agents.*integer"),
    (dict(n_resources=0), "n_resources.*>= 1"),
    (dict(horizon=0), "horizon.*>= 1"),
    (dict(meta="greedy"), "meta must be one of"),
    (dict(one_shot="vcg"), "allowed names: pf, pa"),
    (dict(one_shot=3), "one_shot must be"),
    (dict(budget=-1.0), "budget must be finite and >= 0"),
    (dict(budget=[1.0, np.nan]), "budget must be finite"),
    (dict(budget=[1.0, 2.0, 3.0]), r"shape \(M,\) = \(2,\)"),
    (dict(budget=1.0, budget_scale=0.5), "either budget"),
    (dict(budget_scale=-0.1), "budget_scale.*>= 0"),
    (dict(report_mode="bids"), "report_mode must be one of"),
    (dict(report_bound=0.0), "report_bound.*> 0"),
    (dict(report_bound=np.inf), "report_bound.*finite"),
    (dict(render_mode="video"), "render_mode must be None or one of"),
    (dict(max_cycles=0), "max_cycles"),
    (dict(strict="yes"), "strict must be True or False"),
    (dict(observe_others=1), "observe_others must be True or False"),
    (dict(type_distribution=object()), "TypeDistribution protocol"),
    (dict(meta="independent", beta_schedule=object()), "beta_schedule applies to meta='sama' only"),
    (dict(beta_schedule="x"), "beta_schedule must be a BetaSchedule"),
])
def test_invalid_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SequentialAllocationEnv(**kwargs)


def test_invalid_one_shot_and_type_distribution():
    with pytest.raises(ValueError, match="horizon 1"):
        OneShotAllocationEnv(horizon=3)
    with pytest.raises(ValueError, match="value_low <= value_high"):
        UniformBernoulliTypes(value_low=2.0, value_high=1.0)

    class Broken(UniformBernoulliTypes):
        def sample(self, rng, n_agents, n_resources, horizon):
            v, x = super().sample(rng, n_agents, n_resources, horizon)
            return v * 5, x

    env = SequentialAllocationEnv(type_distribution=Broken())
    with pytest.raises(ValueError, match="outside its declared support"):
        env.reset(seed=0)


def test_custom_type_distribution_is_used():
    dist = UniformBernoulliTypes(value_low=0.5, value_high=0.5, demand_low=1.0, demand_high=1.0, demand_probability=1.0)
    env = SequentialAllocationEnv(n_agents=2, n_resources=1, horizon=2, type_distribution=dist, budget=1.0)
    env.reset(seed=0)
    assert np.all(env.true_values == 0.5) and np.all(env.true_demands == 1.0)
    _, rew, _, _, _ = env.step(env.truthful_actions())
    assert rew["agent_0"] == pytest.approx(0.25) and rew["agent_1"] == pytest.approx(0.25)
