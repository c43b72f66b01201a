"""The batched form: same encoding as the single env, same results for the same seeds."""
from __future__ import annotations

import numpy as np
import pytest

from mechzoo.envs import BatchedSequentialAllocation, SequentialAllocationEnv
from mechzoo.mechanisms import SAMA, total_utilities


def _single_trajectory(kw, seed, actions):
    env = SequentialAllocationEnv(**kw)
    obs, _ = env.reset(seed=seed)
    trace = {"obs": [np.stack([obs[a] for a in env.possible_agents])], "rew": [], "alloc": [], "shadow": []}
    for act in actions:
        obs, rew, term, trunc, info = env.step({a: act[i] for i, a in enumerate(env.possible_agents)})
        trace["obs"].append(np.stack([obs[a] for a in env.possible_agents]))
        trace["rew"].append(np.array([rew[a] for a in env.possible_agents]))
        trace["alloc"].append(np.stack([info[a]["allocation"] for a in env.possible_agents]))
        trace["shadow"].append(np.array([info[a]["truthful_utility"] for a in env.possible_agents]))
    assert env.agents == []
    return trace


@pytest.mark.parametrize("n_envs", [5, 70])  # 70 crosses the PF solver's threshold for its parallel loop
@pytest.mark.parametrize("kw", [
    dict(n_agents=3, n_resources=2, horizon=4, meta="sama", one_shot="pf"),
    dict(n_agents=2, n_resources=3, horizon=3, meta="independent", one_shot="pa", report_mode="absolute",
         observe_others=True),
    dict(n_agents=10, n_resources=1, horizon=2, meta="sama", one_shot="equal"),
])
def test_batched_equals_single_envs(kw, n_envs):
    seed = 100
    benv = BatchedSequentialAllocation(n_envs, **kw)
    rng = np.random.default_rng(0)
    acts = [benv.sample_actions(rng) for _ in range(kw["horizon"])]
    obs, _ = benv.reset(seed=seed)
    assert obs.shape == benv.obs_shape and obs.dtype == np.float32
    rows = {"obs": [obs], "rew": [], "alloc": [], "shadow": []}
    for t, act in enumerate(acts):
        act[1] = benv.truthful_actions()[1]  # instance 1 truthful throughout: a mix of in-sync and not
        obs, rew, term, trunc, info = benv.step(act)
        assert term.shape == trunc.shape == (n_envs,) and term.all() == (t == kw["horizon"] - 1)
        rows["obs"].append(obs)
        rows["rew"].append(rew)
        rows["alloc"].append(info["allocation"])
        rows["shadow"].append(info["truthful_utility"])
    for k in range(n_envs):
        single = _single_trajectory(kw, seed + k, [a[k] for a in acts])
        for key in rows:
            for batched_row, single_row in zip(rows[key], single[key]):
                np.testing.assert_array_equal(batched_row[k], single_row)


def test_batched_seed_sequence_and_reproducibility():
    kw = dict(n_agents=2, n_resources=2, horizon=3)
    a = BatchedSequentialAllocation(3, **kw)
    b = BatchedSequentialAllocation(3, **kw)
    obs_a, _ = a.reset(seed=[7, 8, 9])
    obs_b, _ = b.reset(seed=7)
    np.testing.assert_array_equal(obs_a, obs_b)
    obs_a2, _ = a.reset()
    obs_b2, _ = b.reset()
    np.testing.assert_array_equal(obs_a2, obs_b2)
    assert not np.array_equal(obs_a, obs_a2)
    with pytest.raises(ValueError, match="n_envs = 3"):
        a.reset(seed=[1, 2])


def test_batched_truthful_equals_rollout_and_shapes():
    n_envs, n, m, T = 64, 10, 3, 4
    benv = BatchedSequentialAllocation(n_envs, n_agents=n, n_resources=m, horizon=T)
    benv.reset(seed=1)
    allocs, total = [], np.zeros((n_envs, n))
    for _ in range(T):
        obs, rew, term, trunc, info = benv.step(benv.truthful_actions())
        assert rew.shape == (n_envs, n) and info["allocation"].shape == (n_envs, n, m)
        assert info["clipped"].shape == (n_envs, n) and np.all(info["gain"] == 0)
        allocs.append(info["allocation"])
        total += rew
    assert term.all() and not trunc.any()
    reference = SAMA("pf").rollout(benv.true_values, benv.true_demands, benv.config.budget)
    np.testing.assert_array_equal(np.stack(allocs, axis=1), reference)
    np.testing.assert_array_equal(total, total_utilities(benv.true_values, benv.true_demands, reference))
    np.testing.assert_array_equal(info["cumulative_utility"], total)
    with pytest.raises(ValueError, match="reset"):
        benv.step(benv.truthful_actions())


def test_batched_max_cycles_truncates():
    benv = BatchedSequentialAllocation(3, n_agents=2, horizon=5, max_cycles=2)
    benv.reset(seed=0)
    _, _, term, trunc, _ = benv.step(benv.truthful_actions())
    assert not term.any() and not trunc.any()
    _, _, term, trunc, _ = benv.step(benv.truthful_actions())
    assert not term.any() and trunc.all()
    with pytest.raises(ValueError, match="truncated.*reset"):
        benv.step(benv.truthful_actions())
    benv.reset()
    assert benv.round == 0


def test_batched_bad_input_names_instance_and_agent():
    benv = BatchedSequentialAllocation(4, n_agents=3, n_resources=2, horizon=2)
    with pytest.raises(ValueError, match="reset"):
        benv.step(np.zeros(benv.act_shape))
    benv.reset(seed=0)
    bad = np.zeros(benv.act_shape)
    bad[2, 1, 3] = np.nan
    with pytest.raises(ValueError, match=r"instance 2, agent_1.*demands\[1\]"):
        benv.step(bad)
    with pytest.raises(ValueError, match="shape"):
        benv.step(np.zeros((4, 3, 3)))
    strict = BatchedSequentialAllocation(2, n_agents=2, horizon=2, strict=True)
    strict.reset(seed=0)
    big = np.zeros(strict.act_shape)
    big[1, 0, 0] = 50.0
    with pytest.raises(ValueError, match=r"instance 1, agent_0.*values\[0\].*strict"):
        strict.step(big)
    clip = BatchedSequentialAllocation(2, n_agents=2, horizon=2)
    clip.reset(seed=0)
    _, _, _, _, info = clip.step(big)
    np.testing.assert_array_equal(info["clipped"], [[0, 0], [1, 0]])


def test_batched_render():
    benv = BatchedSequentialAllocation(3, n_agents=2, n_resources=2, horizon=2)
    benv.reset(seed=0)
    benv.step(benv.truthful_actions())
    assert "agent_1" in benv.render(instance=2)
    img = benv.render(instance=1, mode="rgb_array")
    assert img.dtype == np.uint8 and img.shape[2] == 3
