"""The sweep runner: order, checkpoint and resume, validation, and the Ray backend against serial."""
import json
import os
import sys

import numpy as np
import pytest

from mechzoo.baselines import sweep
from mechzoo.baselines.demo import sample_profiles
from mechzoo.baselines.sweep import SweepError, config_key, run_sweep
from mechzoo.baselines.truthful import truthful_outcome
from mechzoo.mechanisms.sequential import SAMA

CALLS: list[int] = []


def truthful_nsw(config: dict) -> dict:
    """Mean truthful NSW of SAMA(proportional) on a few profiles drawn with the configuration's seed."""
    CALLS.append(config["seed"])
    if config.get("fail"):
        raise RuntimeError(f"failing on purpose for seed {config['seed']}")
    if config.get("die"):
        os._exit(1)
    rng = np.random.default_rng(config["seed"])
    n, m, horizon = config["n"], 2, 3
    values, demands = sample_profiles(rng, 4, n, m, horizon)
    outcome = truthful_outcome(SAMA("proportional"), values, demands, np.full(m, n * horizon / 4))
    return {"nsw": outcome.nsw.mean(), "nsw_per_profile": outcome.nsw}


def configs(count: int) -> list[dict]:
    return [{"seed": seed, "n": 2 + seed % 2} for seed in range(count)]


def test_serial_order_and_values(tmp_path):
    results = run_sweep(truthful_nsw, configs(4)[::-1], desc="serial")
    expected = [truthful_nsw(c) for c in configs(4)[::-1]]
    assert results == json.loads(json.dumps(expected, default=sweep._json_default))
    assert len({r["nsw"] for r in results}) == 4


def test_resume_skips_done_configs_and_gives_identical_results(tmp_path):
    checkpoint = tmp_path / "sweep.jsonl"
    first = run_sweep(truthful_nsw, configs(3), checkpoint=checkpoint)
    CALLS.clear()
    resumed = run_sweep(truthful_nsw, configs(5), checkpoint=checkpoint)
    assert CALLS == [3, 4]
    assert resumed[:3] == first
    assert resumed == run_sweep(truthful_nsw, configs(5))
    lines = [json.loads(line) for line in checkpoint.read_text().splitlines()]
    assert [line["key"] for line in lines] == [config_key(c) for c in configs(5)]
    CALLS.clear()
    assert run_sweep(truthful_nsw, configs(5), checkpoint=checkpoint) == resumed
    assert CALLS == []


def test_torn_last_line_is_recomputed(tmp_path):
    checkpoint = tmp_path / "sweep.jsonl"
    full = run_sweep(truthful_nsw, configs(3), checkpoint=checkpoint)
    text = checkpoint.read_text()
    checkpoint.write_text(text[: len(text) - 20])  # the run was killed while writing the last line
    CALLS.clear()
    assert run_sweep(truthful_nsw, configs(3), checkpoint=checkpoint) == full
    assert CALLS == [2]
    assert checkpoint.read_text() == text  # the torn line was replaced, not appended to
    checkpoint.write_text("not json\n" + text)
    with pytest.raises(ValueError, match="line 1 is not a sweep record"):
        run_sweep(truthful_nsw, configs(3), checkpoint=checkpoint)


def test_failure_keeps_the_others_and_reports_the_failed_config(tmp_path):
    checkpoint = tmp_path / "sweep.jsonl"
    bad = configs(4)
    bad[1]["fail"] = True
    with pytest.raises(SweepError, match="failing on purpose for seed 1") as err:
        run_sweep(truthful_nsw, bad, checkpoint=checkpoint)
    assert [config for config, _ in err.value.failures] == [bad[1]]
    assert err.value.results[1] is None and err.value.results[0] == run_sweep(truthful_nsw, configs(1))[0]
    saved = {json.loads(line)["key"] for line in checkpoint.read_text().splitlines()}
    assert saved == {config_key(c) for i, c in enumerate(bad) if i != 1}


@pytest.mark.parametrize("kwargs, configs_, message", [
    ({"backend": "dask"}, [{"seed": 0}], "unknown backend 'dask'"),
    ({}, [{"seed": 0}, {"seed": 0}], r"configs\[1\] duplicates configs\[0\]"),
    ({}, [{"seed": 0}, {"n": 2}], r"configs\[1\] has no 'seed'"),
    ({}, [{"seed": 1.5}], "must be an integer"),
    ({}, [{"seed": True}], "must be an integer"),
    ({}, [{"seed": 0, "x": object()}], "not JSON-serialisable"),
    ({}, [3], r"configs\[0\] must be a dict"),
    ({}, {"seed": 0}, "must be a list of dicts"),
    ({"address": "ray://host:10001"}, [{"seed": 0}], "only used by backend='ray'"),
])
def test_validation(kwargs, configs_, message):
    with pytest.raises(ValueError, match=message):
        run_sweep(truthful_nsw, configs_, **kwargs)


def test_task_must_return_a_dict():
    with pytest.raises(SweepError, match="task must return a dict"):
        run_sweep(len, [{"seed": 0}])


def test_missing_ray_is_reported(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ImportError, match=r"pip install 'mechzoo\[ray\]'"):
        run_sweep(truthful_nsw, [{"seed": 0, "n": 2}], backend="ray")


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    # Workers unpickle this module's tasks by value: tests/ is not on their import path.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_matches_serial_and_keeps_results_when_a_task_fails_or_a_worker_dies(ray_cluster, tmp_path,
                                                                                  monkeypatch):
    grid = configs(8)
    assert run_sweep(truthful_nsw, grid, backend="ray", desc="ray") == run_sweep(truthful_nsw, grid)

    monkeypatch.setattr(sweep, "RAY_MAX_RETRIES", 0)
    checkpoint = tmp_path / "ray.jsonl"
    bad = configs(8)
    bad[2]["fail"] = True
    bad[5]["die"] = True
    with pytest.raises(SweepError, match="2 configuration") as err:
        run_sweep(truthful_nsw, bad, backend="ray", checkpoint=checkpoint)
    assert [config for config, _ in err.value.failures] == [bad[2], bad[5]]
    assert "failing on purpose" in err.value.failures[0][1]
    lines = [json.loads(line) for line in checkpoint.read_text().splitlines()]
    assert {line["key"] for line in lines} == {config_key(c) for i, c in enumerate(bad) if i not in (2, 5)}
    good = {config_key(c): r for c, r in zip(grid, run_sweep(truthful_nsw, grid))}
    assert all(line["result"] == good[line["key"]] for line in lines)
