"""PettingZoo's own test suite over a pruned parameter matrix, plus the game's semantics."""
from __future__ import annotations

import itertools
import pickle
import warnings

import numpy as np
import pettingzoo
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, parallel_seed_test, render_test, seed_test

from mechzoo.envs import (
    BatchedSequentialAllocation,
    OneShotAllocationEnv,
    SequentialAllocationEnv,
    env as aec_env,
    one_shot_allocation_v0,
    register_envs,
    sequential_allocation_v0,
)
from mechzoo.mechanisms import SAMA, Independent, make_one_shot, one_shot_names, total_utilities

SIZES = [(1, 1), (2, 3), (10, 1), (1, 3), (2, 1), (10, 3)]  # N in {1, 2, 10} x M in {1, 3}
ONE_SHOTS = ["pf", "pa", "equal", "proportional", "head_start"]
LEARNED = {"rpf_net": [(2, 2), (10, 3)], "exs_net": [(2, 2), (10, 3)], "softmax_net": [(2, 2)]}  # shipped sizes
METAS = ["sama", "independent"]
MODES = ["relative", "absolute"]

# The full product N in {1, 2, 10} x M in {1, 3} x meta x one-shot rule x report mode (96 games);
# horizons cycle through 1, 3 and 5 to keep it fast while covering the one-round case, and about
# half of the games add the other agents' reports to the observations.
MATRIX = [
    dict(one_shot=f, meta=meta, report_mode=mode, n_agents=n, n_resources=m, horizon=(3, 1, 5)[k % 3],
         observe_others=bool((k // 5) % 2))
    for k, ((n, m), f, meta, mode) in enumerate(itertools.product(SIZES, ONE_SHOTS, METAS, MODES))
]
IDS = [f"{c['meta']}-{c['one_shot']}-{c['report_mode']}-N{c['n_agents']}M{c['n_resources']}T{c['horizon']}"
       f"{'-others' if c['observe_others'] else ''}"
       for c in MATRIX]


def test_matrix_covers_every_axis_value():
    assert {c["one_shot"] for c in MATRIX} | set(LEARNED) == set(ONE_SHOTS) | set(LEARNED) == set(one_shot_names())
    assert {c["n_agents"] for c in MATRIX} == {1, 2, 10}
    assert {c["n_resources"] for c in MATRIX} == {1, 3}
    assert {c["meta"] for c in MATRIX} == set(METAS)
    assert {c["report_mode"] for c in MATRIX} == set(MODES)
    assert {c["observe_others"] for c in MATRIX} == {False, True}
    assert {(c["n_agents"], c["observe_others"]) for c in MATRIX} >= {(1, True), (10, True)}


@pytest.mark.parametrize("cfg", MATRIX, ids=IDS)
def test_pettingzoo_api_suite(cfg):
    parallel_api_test(SequentialAllocationEnv(**cfg), num_cycles=50)
    api_test(aec_env(**cfg), num_cycles=50)
    seed_test(lambda: aec_env(**cfg), num_cycles=20)
    parallel_seed_test(lambda: SequentialAllocationEnv(**cfg), num_cycles=20)


@pytest.mark.parametrize("f,n,m,meta", [(f, n, m, meta) for f, sizes in LEARNED.items() for n, m in sizes
                                        for meta in METAS])
def test_pettingzoo_api_suite_learned_mechanisms(f, n, m, meta):
    """The learned one-shot rules at the sizes they ship weights for."""
    cfg = dict(one_shot=f, meta=meta, n_agents=n, n_resources=m, horizon=3)
    parallel_api_test(SequentialAllocationEnv(**cfg), num_cycles=10)
    api_test(aec_env(**cfg), num_cycles=10)
    parallel_seed_test(lambda: SequentialAllocationEnv(**cfg), num_cycles=5)


@pytest.mark.parametrize("n,m", SIZES)
def test_render_suite(n, m):
    render_test(lambda render_mode=None: aec_env(n_agents=n, n_resources=m, horizon=3, render_mode=render_mode))


def test_observe_others_api():
    cfg = dict(n_agents=3, n_resources=2, horizon=3, observe_others=True)
    parallel_api_test(SequentialAllocationEnv(**cfg), num_cycles=20)
    api_test(aec_env(**cfg), num_cycles=20)


def test_max_cycles():
    max_cycles_test(sequential_allocation_v0)  # horizon 10 cut at 4 rounds: truncation


def test_one_shot_api_suite():
    parallel_api_test(OneShotAllocationEnv(one_shot="pa", n_agents=3), num_cycles=10)
    api_test(one_shot_allocation_v0.env(one_shot="pf", n_agents=2, n_resources=3), num_cycles=10)
    seed_test(lambda: one_shot_allocation_v0.env(one_shot="equal"), num_cycles=10)


# ---------------------------------------------------------------------------------- registry
def test_registry_make_parallel_and_aec():
    from pettingzoo.utils.env import AECEnv, ParallelEnv

    par = pettingzoo.make("parallel", "mechzoo/SequentialAllocation-v0", n_agents=3, n_resources=2, horizon=2)
    assert isinstance(par, ParallelEnv) and isinstance(par, SequentialAllocationEnv)
    aec = pettingzoo.make("aec", "mechzoo/SequentialAllocation-v0", n_agents=3)
    assert isinstance(aec, AECEnv) and isinstance(aec.unwrapped, SequentialAllocationEnv)
    one = pettingzoo.make("parallel", "mechzoo/OneShotAllocation-v0", one_shot="pa", n_agents=4)
    assert isinstance(one, OneShotAllocationEnv) and one.config.horizon == 1
    np.testing.assert_array_equal(one.config.budget, [2.0, 2.0])  # b = N / 2 per resource
    assert isinstance(pettingzoo.make("aec", "mechzoo/OneShotAllocation-v0"), AECEnv)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register_envs()  # idempotent: no "Overriding environment" warning
        import mechzoo.envs  # noqa: F401


# ---------------------------------------------------------------------------------- semantics
def _random_actions(env, rng):
    space = env.action_space(env.possible_agents[0])
    return {a: rng.uniform(space.low, space.high).astype(np.float32) for a in env.agents}


@pytest.mark.parametrize("meta", METAS)
def test_multi_step_determinism(meta):
    def run(seed_first, seed_second):
        env = SequentialAllocationEnv(n_agents=4, n_resources=3, horizon=6, meta=meta)
        rng = np.random.default_rng(123)
        trace = []
        for seed in (seed_first, seed_second):
            obs, _ = env.reset(seed=seed)
            trace.append(np.stack(list(obs.values())))
            while env.agents:
                obs, rew, term, trunc, info = env.step(_random_actions(env, rng))
                trace.append(np.stack(list(obs.values())))
                trace.append(np.array(list(rew.values())))
                trace.append(np.stack([info[a]["allocation"] for a in info]))
        return trace

    first, second = run(7, None), run(7, None)
    assert len(first) == len(second)
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)
    other = run(8, None)
    assert not all(np.array_equal(x, y) for x, y in zip(first, other))


def test_pickle_round_trip_mid_episode():
    env = SequentialAllocationEnv(n_agents=3, n_resources=2, horizon=5, one_shot="pa", render_mode="ansi")
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    env.step(_random_actions(env, rng))
    clone = pickle.loads(pickle.dumps(env))
    actions = [_random_actions(env, rng) for _ in range(4)]
    for act in actions:
        out_a, out_b = env.step(act), clone.step(act)
        for da, db in zip(out_a, out_b):
            assert da.keys() == db.keys()
            for k in da:
                if isinstance(da[k], dict):
                    for key in da[k]:
                        np.testing.assert_array_equal(da[k][key], db[k][key])
                else:
                    np.testing.assert_array_equal(da[k], db[k])
    assert env.render() == clone.render()
    aec = pickle.loads(pickle.dumps(aec_env(n_agents=2)))
    aec.reset(seed=0)


@pytest.mark.parametrize("meta,one_shot,mode", [("sama", "pf", "relative"), ("independent", "pa", "absolute"),
                                                ("sama", "equal", "absolute"), ("independent", "proportional", "relative"),
                                                ("sama", "pa", "relative")])
def test_truthful_play_equals_mechanism_rollout(meta, one_shot, mode):
    n, m, T = 4, 3, 6
    env = SequentialAllocationEnv(n_agents=n, n_resources=m, horizon=T, meta=meta, one_shot=one_shot, report_mode=mode)
    env.reset(seed=11)
    allocations, rewards = [], np.zeros(n)
    while env.agents:
        _, rew, _, _, info = env.step(env.truthful_actions())
        allocations.append(np.stack([info[a]["allocation"] for a in env.possible_agents]))
        rewards += np.array([rew[a] for a in env.possible_agents])
        for a in env.possible_agents:  # truthful: the shadow run is the real run
            assert info[a]["utility"] == info[a]["truthful_utility"]
            assert info[a]["cumulative_gain"] == 0.0 and info[a]["clipped"] == 0
    mech = SAMA(one_shot) if meta == "sama" else Independent(one_shot)
    values, demands = env.true_values, env.true_demands
    reference = mech.rollout(values, demands, env.config.budget)
    np.testing.assert_array_equal(np.stack(allocations), reference)
    np.testing.assert_array_equal(rewards, total_utilities(values, demands, reference))
    last = info[env.possible_agents[0]]
    assert last["cumulative_utility"] == rewards[0]


def test_shadow_run_matches_truthful_env_under_misreports():
    kw = dict(n_agents=3, n_resources=2, horizon=5, one_shot="pf")
    liar, honest = SequentialAllocationEnv(**kw), SequentialAllocationEnv(**kw)
    liar.reset(seed=4)
    honest.reset(seed=4)
    rng = np.random.default_rng(1)
    while liar.agents:
        act = _random_actions(liar, rng)
        act["agent_1"] = np.zeros(4, dtype=np.float32)
        _, _, _, _, info = liar.step(act)
        _, rew, _, _, _ = honest.step(honest.truthful_actions())
        for a in liar.possible_agents:
            assert info[a]["truthful_utility"] == rew[a]
            np.testing.assert_array_equal(info[a]["truthful_allocation"], honest._engine.last_allocation[0, int(a[-1])])
            assert info[a]["gain"] == pytest.approx(info[a]["utility"] - info[a]["truthful_utility"])


def test_one_shot_game_equals_one_shot_rule():
    for name in ONE_SHOTS:
        env = OneShotAllocationEnv(n_agents=5, n_resources=3, one_shot=name)
        env.reset(seed=2)
        _, rew, term, trunc, info = env.step(env.truthful_actions())
        assert all(term.values()) and not any(trunc.values()) and env.agents == []
        v, x = env.true_values, env.true_demands[0]
        expected = make_one_shot(name).allocate(v, x, np.full(3, 2.5))
        np.testing.assert_array_equal(np.stack([info[a]["allocation"] for a in env.possible_agents]), expected)


def test_termination_and_truncation():
    env = SequentialAllocationEnv(n_agents=2, horizon=3)
    env.reset(seed=0)
    for t in range(3):
        _, _, term, trunc, info = env.step(env.truthful_actions())
        assert all(v == (t == 2) for v in term.values()) and not any(trunc.values())
        assert info["agent_0"]["round"] == t
    assert env.agents == []
    with pytest.raises(ValueError, match="reset"):
        env.step({})
    cut = SequentialAllocationEnv(n_agents=2, horizon=5, max_cycles=2)
    cut.reset(seed=0)
    cut.step(cut.truthful_actions())
    _, _, term, trunc, _ = cut.step(cut.truthful_actions())
    assert not any(term.values()) and all(trunc.values()) and cut.agents == []


def test_observation_layout_and_contents():
    n, m, T = 3, 2, 4
    env = SequentialAllocationEnv(n_agents=n, n_resources=m, horizon=T, observe_others=True, budget=[1.5, 2.0])
    L = env.observation_layout
    assert list(L) == ["values", "demands", "progress", "remaining_budget", "cumulative_allocation",
                       "last_allocation", "others_reported_values", "others_reported_demands",
                       "others_cumulative_allocation"]
    space = env.observation_space("agent_0")
    assert space.dtype == np.float32 and space.shape == (max(s.stop for s in L.values()),)
    assert env.action_space("agent_0").shape == (2 * m,) and env.action_space("agent_0").dtype == np.float32
    assert env.action_layout == {"values": slice(0, m), "demands": slice(m, 2 * m)}
    obs, _ = env.reset(seed=5)
    rng = np.random.default_rng(5)
    cumulative = np.zeros((n, m))
    for t in range(T):
        for i, a in enumerate(env.possible_agents):
            o = obs[a]
            assert space.contains(o)
            np.testing.assert_array_equal(o[L["values"]], env.true_values[i].astype(np.float32))
            np.testing.assert_array_equal(o[L["demands"]], env.true_demands[t, i].astype(np.float32))
            assert o[L["progress"]][0] == np.float32(t / T)
            np.testing.assert_allclose(o[L["cumulative_allocation"]], cumulative[i], rtol=1e-6)
        obs, _, _, _, info = env.step(_random_actions(env, rng))
        alloc = np.stack([info[a]["allocation"] for a in env.possible_agents])
        cumulative += alloc
        np.testing.assert_allclose(obs["agent_0"][L["remaining_budget"]], [1.5, 2.0] - alloc.sum(0) - (cumulative - alloc).sum(0), rtol=1e-5, atol=1e-6)
        others = obs["agent_1"][L["others_reported_demands"]].reshape(n - 1, m)
        np.testing.assert_allclose(others, np.stack([info["agent_0"]["reported_demands"], info["agent_2"]["reported_demands"]]), rtol=1e-6)
        np.testing.assert_allclose(obs["agent_2"][L["last_allocation"]], alloc[2], rtol=1e-6)
    assert all(space.contains(o) for o in obs.values())


def test_relative_reports_and_clipping():
    env = SequentialAllocationEnv(n_agents=2, n_resources=2, horizon=2)
    env.reset(seed=9)
    v, x = env.true_values, env.true_demands[0]
    bound = float(env.action_space("agent_0").high[0])
    act = {"agent_0": np.array([np.log(2.0), 0.0, np.log(0.5), 0.0], dtype=np.float32),
           "agent_1": np.array([5.0, -5.0, 5.0, 0.0], dtype=np.float32)}
    _, _, _, _, info = env.step(act)
    np.testing.assert_allclose(info["agent_0"]["reported_values"], v[0] * [2.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(info["agent_0"]["reported_demands"], x[0] * [0.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(info["agent_1"]["reported_values"], v[1] * np.exp([bound, -bound]), rtol=1e-9)
    assert info["agent_1"]["clipped"] == 3 and info["agent_0"]["clipped"] == 0
    # zero true demand is reported as 0 whatever the multiplier
    zero = np.flatnonzero(x[1] == 0)
    np.testing.assert_array_equal(info["agent_1"]["reported_demands"][zero], 0.0)
    # values part ignored after round 0, still counted when clipped
    _, _, _, _, info = env.step({"agent_0": np.zeros(4, np.float32), "agent_1": np.array([9, 9, 0, 0], np.float32)})
    np.testing.assert_allclose(info["agent_1"]["reported_values"], v[1] * np.exp([bound, -bound]), rtol=1e-9)
    assert info["agent_1"]["clipped"] == 2 and info["agent_1"]["clipped_total"] == 5


def test_absolute_reports_clip_to_type_support():
    env = SequentialAllocationEnv(n_agents=2, n_resources=1, horizon=1, report_mode="absolute")
    space = env.action_space("agent_0")
    np.testing.assert_allclose(space.low, [0.1, 0.0], rtol=1e-6)
    np.testing.assert_allclose(space.high, [1.0, 1.0])
    env.reset(seed=0)
    _, _, _, _, info = env.step({"agent_0": np.array([3.0, 0.5]), "agent_1": np.array([0.0, 2.0])})
    assert info["agent_0"]["reported_values"][0] == 1.0 and info["agent_0"]["clipped"] == 1
    assert info["agent_1"]["reported_values"][0] == np.float32(0.1) and info["agent_1"]["reported_demands"][0] == 1.0
    assert info["agent_1"]["clipped"] == 2


def test_default_budget_and_types():
    env = SequentialAllocationEnv(n_agents=4, n_resources=3, horizon=6)
    np.testing.assert_array_equal(env.config.budget, np.full(3, 0.5 * 4 * 6 / 2))
    np.testing.assert_array_equal(SequentialAllocationEnv(n_agents=4, horizon=6, budget_scale=1.2).config.budget,
                                  np.full(2, 1.2 * 4 * 6 / 2))
    env.reset(seed=0)
    v, x = env.true_values, env.true_demands
    assert v.min() >= 0.1 and v.max() <= 1.0 and x.min() >= 0.0 and x.max() <= 1.0
    assert np.all((x == 0) | (x >= 0.1))
    assert np.array_equal(v, v.astype(np.float32)) and np.array_equal(x, x.astype(np.float32))


def test_render_outputs():
    env = SequentialAllocationEnv(n_agents=3, n_resources=2, horizon=2, render_mode="ansi")
    env.reset(seed=0)
    assert "not" in env.render() or "no round" in env.render()
    env.step(env.truthful_actions())
    text = env.render()
    assert "agent_2" in text and "allocation" in text and "true values" in text
    rgb = SequentialAllocationEnv(n_agents=3, n_resources=2, horizon=2, render_mode="rgb_array")
    rgb.reset(seed=0)
    rgb.step(rgb.truthful_actions())
    image = rgb.render()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.std() > 0


# ---------------------------------------------------------------------------------- invariants

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 4), m=st.integers(1, 3), T=st.integers(1, 4), meta=st.sampled_from(METAS),
       one_shot=st.sampled_from(ONE_SHOTS), mode=st.sampled_from(MODES), seed=st.integers(0, 2**31 - 1),
       scale=st.sampled_from([0.0, 0.1, 0.5, 2.0]), spread=st.sampled_from([0.5, 1.0, 3.0]))
def test_invariants_under_arbitrary_actions(n, m, T, meta, one_shot, mode, seed, scale, spread):
    """Feasible allocations, budget accounting, observations in the space, rewards = true utility,
    for any finite actions (including out of range, which are clipped and counted)."""
    env = SequentialAllocationEnv(n_agents=n, n_resources=m, horizon=T, meta=meta, one_shot=one_shot,
                                  report_mode=mode, budget_scale=scale, observe_others=n > 1)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    space, act_space = env.observation_space("agent_0"), env.action_space("agent_0")
    mid, half = (act_space.high + act_space.low) / 2, (act_space.high - act_space.low) / 2
    budget, total = env.config.budget.copy(), np.zeros(m)
    v = env.true_values
    for t in range(T):
        assert all(space.contains(o) for o in obs.values())
        raw = mid + half * spread * rng.uniform(-1, 1, (n, 2 * m))
        expected_clips = ((raw < act_space.low) | (raw > act_space.high)).sum(axis=1)
        obs, rew, term, trunc, info = env.step(dict(zip(env.possible_agents, raw)))
        a = np.stack([info[ag]["allocation"] for ag in env.possible_agents])
        rep_x = np.stack([info[ag]["reported_demands"] for ag in env.possible_agents])
        assert np.all(a >= 0) and np.all(a <= rep_x)
        assert np.all(a.sum(axis=0) <= budget - total + 1e-12)
        total += a.sum(axis=0)
        x = env.true_demands[t]
        for i, ag in enumerate(env.possible_agents):
            assert rew[ag] == pytest.approx(float(np.sum(v[i] * np.minimum(a[i], x[i]))), abs=1e-12)
            assert info[ag]["clipped"] == expected_clips[i]
            assert info[ag]["gain"] == info[ag]["utility"] - info[ag]["truthful_utility"]
        assert all(term.values()) == (t == T - 1) and not any(trunc.values())
    assert np.all(total <= budget * (1 + 1e-12) + 1e-12)
    assert all(space.contains(o) for o in obs.values()) and env.agents == []


@pytest.mark.parametrize("n,m", [(1, 1), (3, 2)])
def test_global_state_suite_and_contents(n, m):
    from pettingzoo.test.state_test import state_test

    state_test(aec_env(n_agents=n, n_resources=m, horizon=4), SequentialAllocationEnv(n_agents=n, n_resources=m, horizon=4))
    game = SequentialAllocationEnv(n_agents=n, n_resources=m, horizon=4, report_mode="absolute")
    with pytest.raises(ValueError, match="reset"):
        game.state()
    game.reset(seed=3)
    actions = {a: game.action_space(a).sample() for a in game.agents}
    game.step(actions)
    s, L = game.state(), game.state_layout
    assert game.state_space.contains(s)
    np.testing.assert_allclose(s[L["values"]], game.true_values.ravel(), rtol=1e-6)
    np.testing.assert_allclose(s[L["demands"]], game.true_demands[1].ravel(), rtol=1e-6)
    np.testing.assert_allclose(s[L["remaining_budget"]], game.remaining_budget, rtol=1e-6)
    reported = np.stack([actions[a][:m] for a in game.possible_agents]).ravel()
    np.testing.assert_allclose(s[L["reported_values"]], reported, rtol=1e-6)
    assert s[L["progress"]][0] == pytest.approx(1 / 4)


def test_batched_state_matches_single_env():
    benv = BatchedSequentialAllocation(3, n_agents=2, n_resources=2, horizon=3)
    benv.reset(seed=[5, 6, 7])
    benv.step(benv.truthful_actions())
    single = SequentialAllocationEnv(n_agents=2, n_resources=2, horizon=3)
    single.reset(seed=6)
    single.step(single.truthful_actions())
    np.testing.assert_array_equal(benv.state()[1], single.state())
