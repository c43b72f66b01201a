"""Independent PPO dynamics and the BestResponseVecEnv: records, checkpoints, resume."""
import csv

import numpy as np
import pytest
import torch

from mechzoo.agents.best_response_env import BestResponseVecEnv
from mechzoo.agents.dynamics import ppo_dynamics
from mechzoo.agents.policies import ScalingPolicy
from mechzoo.agents.sequential_oracles import ScalingMisreports

GAME = dict(n_resources=1, horizon=2)
GRID = ScalingMisreports(value_factors=(1.0,), demand_factors=(0.5, 1.0))


def test_vec_env_auto_resets_and_is_seeded():
    def run(seed):
        venv = BestResponseVecEnv(GAME, n_envs=3, opponents=ScalingPolicy.inflate(1.5), reward="gain")
        venv.seed(seed)
        out = [venv.reset().ravel()]
        for _ in range(2):
            obs, rewards, dones, infos = venv.step(np.full((3, 2), -0.5, dtype=np.float32))
            out += [obs.ravel(), rewards]
        return np.concatenate(out), dones, infos

    a, dones, infos = run(3)
    assert dones.all() and "terminal_observation" in infos[0] and not infos[0]["TimeLimit.truncated"]
    np.testing.assert_array_equal(a, run(3)[0])
    assert not np.array_equal(a, run(4)[0])


@pytest.mark.slow
def test_independent_ppo_records_checkpoints_and_resumes(tmp_path):
    torch.set_num_threads(1)
    kwargs = dict(timesteps_per_round=128, eval_profiles=6, seed=0, misreports=GRID, n_envs=8, progress=False)
    ppo_dynamics(GAME, rounds=1, out=tmp_path, **kwargs)
    history = ppo_dynamics(GAME, rounds=2, out=tmp_path, resume=True, **kwargs)
    assert [h["iteration"] for h in history] == [1, 2]
    for name in ("agent_0.zip", "agent_1.zip", "history.csv", "history.png", "checkpoint.json"):
        assert (tmp_path / name).stat().st_size > 0
    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    assert len(rows) == 2 and float(rows[1]["timesteps"]) == 256
    assert all(h["nash_conv"] >= 0 and h["report_distance"] >= 0 and h["truthful_nsw"] > 0 for h in history)
    with pytest.raises(ValueError, match="learners"):
        ppo_dynamics(GAME, learners=["agent_7"], out=tmp_path / "x", **kwargs)
