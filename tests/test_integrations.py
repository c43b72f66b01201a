"""The games in RL libraries: SB3 through SuperSuit (self-play), RLlib (PPO, one policy per agent), TorchRL."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mechzoo.agents.policies import GameSpec, Policy, SB3Policy, rollout
from mechzoo.agents.sequential_oracles import ScalingMisreports
from mechzoo.envs import SequentialAllocationEnv

ROOT = Path(__file__).resolve().parents[1]
SMALL_GRID = ScalingMisreports(value_factors=(0.5, 1.0, 2.0), demand_factors=(1.0, 2.0))


def _params(model) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in model.policy.parameters()]


# ------------------------------------------------------------------ SB3 via SuperSuit
def _step_until_done(vec, steps: int):
    """Zero (truthful) actions for ``steps`` steps; returns (dones, infos) per step."""
    vec.reset()
    trace = []
    for _ in range(steps):
        vec.step_async(np.zeros((vec.num_envs,) + vec.action_space.shape, dtype=np.float32))
        obs, rewards, dones, infos = vec.step_wait()
        assert obs.shape == (vec.num_envs,) + vec.observation_space.shape and np.all((0 <= obs) & (obs <= 1))
        trace.append((dones.copy(), infos))
    return trace


def test_selfplay_marks_max_cycles_cut_as_truncation_and_horizon_as_termination():
    pytest.importorskip("supersuit")
    from mechzoo.agents.sb3_selfplay import selfplay_vec_env

    cut = selfplay_vec_env({"horizon": 4, "max_cycles": 2}, n_envs=2, seed=0)
    assert cut.num_envs == 4
    trace = _step_until_done(cut, 4)
    for step, (dones, infos) in enumerate(trace):
        assert dones.tolist() == [step % 2 == 1] * 4
        assert [info["TimeLimit.truncated"] for info in infos] == [step % 2 == 1] * 4
        if step % 2 == 1:
            terminal = np.stack([info["terminal_observation"] for info in infos])
            assert np.all((0 <= terminal) & (terminal <= 1))
            assert np.allclose(terminal[:, 4], 0.5, atol=1e-5)  # progress t/T after 2 of 4 rounds
    full = selfplay_vec_env({"horizon": 2}, n_envs=1, seed=0)
    trace = _step_until_done(full, 2)
    assert trace[1][0].all() and not any(info["TimeLimit.truncated"] for info in trace[1][1])


def test_selfplay_seed_reproduces_episodes_and_maps_actions_onto_the_game():
    pytest.importorskip("supersuit")
    from mechzoo.agents.sb3_selfplay import selfplay_vec_env

    def first_obs(seed):
        vec = selfplay_vec_env({"horizon": 3, "n_agents": 3}, n_envs=2)
        vec.seed(seed)
        return vec.reset()

    np.testing.assert_array_equal(first_obs(5), first_obs(5))
    assert not np.array_equal(first_obs(5), first_obs(6))
    game = SequentialAllocationEnv(horizon=3, n_agents=3)
    obs, _ = game.reset(seed=6)  # copy 1 of the game is reset with seed + 1
    spec = GameSpec.of(game)
    np.testing.assert_array_equal(first_obs(5)[3:], spec.normalize_observation(np.stack(list(obs.values()))))
    vec = selfplay_vec_env({"horizon": 3}, seed=0)
    vec.reset()
    vec.step_async(np.full((2, 4), 1.0, dtype=np.float32))  # +1 = the top of the action box
    _, _, _, infos = vec.step_wait()
    assert all(info["clipped"] == 0 for info in infos)
    with pytest.raises(ValueError, match="n_envs must be an integer >= 1"):
        selfplay_vec_env(n_envs=0)
    with pytest.raises(ValueError, match="game must be a SequentialAllocationEnv"):
        selfplay_vec_env(game="pf")


def test_selfplay_ppo_bootstraps_only_at_truncation():
    pytest.importorskip("supersuit")
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    from mechzoo.agents.sb3_selfplay import selfplay_vec_env

    class RawRewards(BaseCallback):
        def _on_step(self) -> bool:
            self.raw.append(self.locals["rewards"].copy())  # before SB3 adds the bootstrap term
            return True

    callback = RawRewards()
    callback.raw = []
    vec = selfplay_vec_env({"horizon": 4, "max_cycles": 2}, seed=0)
    model = PPO("MlpPolicy", vec, n_steps=4, batch_size=8, n_epochs=1, seed=0)
    model.learn(8, callback=callback)
    buffered, raw = model.rollout_buffer.rewards, np.array(callback.raw[-4:])
    np.testing.assert_allclose(buffered[[0, 2]], raw[[0, 2]], rtol=1e-6)  # mid-episode: no bootstrap
    assert np.all(np.abs(buffered[[1, 3]] - raw[[1, 3]]) > 1e-6)        # cut by max_cycles: bootstrapped


@pytest.mark.slow
def test_selfplay_ppo_trains_reproducibly_and_plays_as_a_policy():
    pytest.importorskip("supersuit")
    from mechzoo.agents.sb3_selfplay import train_selfplay

    game = {"horizon": 3}
    kwargs = dict(total_timesteps=128, seed=3, n_envs=2, ppo_kwargs={"n_steps": 32, "batch_size": 64, "n_epochs": 2})
    model = train_selfplay(game, **kwargs)
    assert model.num_timesteps == 128
    for a, b in zip(_params(model), _params(train_selfplay(game, **kwargs))):
        np.testing.assert_array_equal(a, b)
    more = train_selfplay(game, **{**kwargs, "total_timesteps": 128}, model=model)
    assert more is model and model.num_timesteps == 256
    played = rollout(SequentialAllocationEnv(**game), SB3Policy(model), episodes=3, seed=0)
    assert np.all(np.isfinite(played.gain)) and played.utility.shape == (3, 2)


@pytest.mark.slow
@pytest.mark.parametrize("script, argv, expected", [
    ("sb3_selfplay.py", ["--timesteps", "64", "--n-envs", "1", "--horizon", "2", "--profiles", "4"], "NashConv"),
    ("sb3_best_response.py", ["--timesteps", "64", "--horizon", "2", "--profiles", "4"], "mean gain over truthful"),
])
def test_sb3_examples_run(script, argv, expected, tmp_path, monkeypatch, capsys):
    pytest.importorskip("supersuit")
    path = ROOT / "examples" / script
    monkeypatch.setattr(sys, "argv", [str(path), *argv, "--out", str(tmp_path)])
    runpy.run_path(str(path), run_name="__main__")
    assert expected in capsys.readouterr().out
    assert (tmp_path / "model.zip").exists()


# ------------------------------------------------------------------ RLlib
@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.rllib")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_rllib_ppo_one_policy_per_agent_resumes_and_gives_a_profile(ray_local, tmp_path):
    from ray.rllib.utils.spaces.space_utils import unsquash_action

    from mechzoo.agents.nash_conv import nash_conv
    from mechzoo.agents.rllib import RLlibPolicy, ppo_config, train_ppo

    game = {"horizon": 3}
    config = ppo_config(game, seed=0, train_batch_size=60, minibatch_size=30, num_epochs=1)
    assert config.is_multi_agent and set(config.policies) == {"agent_0", "agent_1"}
    policies, history = train_ppo(game, iterations=1, config=config, checkpoint=tmp_path, progress=False)
    assert [h["iteration"] for h in history] == [1] and history[0]["env_steps"] >= 60
    policies, resumed = train_ppo(game, iterations=2, config=config, checkpoint=tmp_path, progress=False)
    assert [h["iteration"] for h in resumed] == [1, 2] and resumed[0] == history[0]
    assert resumed[1]["env_steps"] > resumed[0]["env_steps"]
    assert set(policies) == {"agent_0", "agent_1"}
    assert policies["agent_0"].module is not policies["agent_1"].module

    env = SequentialAllocationEnv(**game)
    obs, _ = env.reset(seed=1)
    batch = np.stack([obs["agent_0"], obs["agent_1"]])
    space = env.action_space("agent_0")
    for agent, policy in policies.items():
        assert isinstance(policy, Policy) and isinstance(policy, RLlibPolicy)
        single = policy.act(obs[agent], agent)
        assert single.shape == space.shape and space.contains(single.astype(np.float32))
        np.testing.assert_allclose(policy.act(batch, agent)[0], policy.act(obs["agent_0"], agent), atol=1e-6)
        with torch.no_grad():  # RLlib's own deterministic action, unsquashed as RLlib sends it to the env
            logits = policy.module.forward_inference({"obs": torch.as_tensor(obs[agent])[None]})["action_dist_inputs"]
            mean = logits[0, : space.shape[0]].numpy()
        np.testing.assert_allclose(single, unsquash_action(mean, space), atol=1e-5)
    estimate = nash_conv(game, policies, profiles=8, seed=0, misreports=SMALL_GRID, progress=False)
    assert np.isfinite(estimate.nash_conv) and estimate.nash_conv >= 0
    assert np.all(estimate.gains >= 0)


# ------------------------------------------------------------------ TorchRL
def test_torchrl_wrapper_one_group_specs_and_episode_end():
    pytest.importorskip("torchrl")
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper
    from torchrl.envs.utils import check_env_specs

    env = PettingZooWrapper(SequentialAllocationEnv(horizon=3), seed=0)
    assert env.group_map == {"agent": ["agent_0", "agent_1"]}
    check_env_specs(env)
    zeros = env.full_action_spec.zero()  # relative reports: zero = truthful

    def truthful(td):
        return td.update(zeros)

    episode = env.rollout(3, policy=truthful, auto_reset=False, tensordict=env.reset(seed=4))  # seed reaches the game
    assert episode["next", "done"].squeeze(-1).tolist() == [False, False, True]
    assert not episode["next", "truncated"].any()
    game = SequentialAllocationEnv(horizon=3)
    game.reset(seed=4)
    expected = [list(game.step(game.truthful_actions())[1].values()) for _ in range(3)]
    np.testing.assert_allclose(episode["next", "agent", "reward"].squeeze(-1).numpy(), expected, rtol=1e-6)

    cut = PettingZooWrapper(SequentialAllocationEnv(horizon=4, max_cycles=2), seed=0)
    steps = cut.rollout(4, policy=truthful, break_when_any_done=False)
    assert steps["next", "truncated"].squeeze(-1).tolist() == [False, True, False, True]
    assert not steps["next", "terminated"].any()
