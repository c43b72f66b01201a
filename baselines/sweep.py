"""Run one task over many configurations, serially or on a Ray cluster, with a resumable checkpoint.

A *configuration* is a JSON-serialisable dict carrying its own integer ``seed``; a *task* is a
module-level function ``task(config) -> dict`` (so that it pickles) whose result is JSON-serialisable.
Given the same configurations, both backends return the same results, in configuration order.

The checkpoint is a JSON-lines file; each finished configuration appends one line
``{"key": <canonical key>, "config": ..., "result": ...}`` as soon as it finishes. A rerun with the
same checkpoint skips the configurations already there, so an interrupted sweep resumes where it
stopped and a failed worker never costs the results of the others.
"""
from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

BACKENDS = ("serial", "ray")
RAY_MAX_RETRIES = 2
"""How often Ray re-runs a configuration whose worker process died (not when the task raises)."""


class SweepError(RuntimeError):
    """Some configurations failed; the results of all others are in the checkpoint (if any).

    ``failures`` lists ``(config, error message)`` pairs in configuration order; ``results`` holds
    every configuration's result in configuration order, ``None`` for the failed ones.
    """

    def __init__(self, failures: list[tuple[dict, str]], results: list[dict | None]):
        self.failures, self.results = failures, results
        lines = [f"  {config_key(config)}: {message.strip().splitlines()[-1]}" for config, message in failures]
        super().__init__(f"{len(failures)} configuration(s) failed; the others' results were kept:\n"
                         + "\n".join(lines))


def config_key(config: dict) -> str:
    """Canonical key of a configuration: its JSON with sorted keys and no spaces."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=_json_default)


def run_sweep(task: Callable[[dict], dict], configs: list[dict], *, backend: str = "serial",
              address: str | None = None, checkpoint: str | Path | None = None, desc: str = "") -> list[dict]:
    """Run ``task(config)`` for every configuration; return the results in configuration order.

    ``backend="serial"`` runs in this process; ``backend="ray"`` runs one Ray task per configuration
    on the cluster at ``address`` (a local one when ``None``); an already initialised Ray is reused,
    and one started here stays up for later sweeps of the process (``ray.shutdown()`` stops it).
    ``checkpoint`` names a JSON-lines file that receives each result as it finishes and from which a
    rerun takes the results already computed. Results are returned as they read back from JSON, so a
    resumed sweep returns exactly what a fresh one does. Raises ``ValueError`` for bad arguments and
    ``SweepError`` (after saving every other result) when some configurations raised.
    """
    keys = _validate(task, configs, backend)
    path = Path(checkpoint) if checkpoint is not None else None
    done = _load_checkpoint(path, set(keys)) if path is not None else {}
    todo = [(key, config) for key, config in zip(keys, configs) if key not in done]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    with tqdm(total=len(configs), initial=len(configs) - len(todo), desc=desc or "sweep") as bar:
        def record(key: str, config: dict, result: Any) -> None:
            line = _checkpoint_line(key, config, result)
            done[key] = json.loads(line)["result"]
            if path is not None:
                with open(path, "a") as f:
                    f.write(line + "\n")
            bar.update(1)

        run = _run_serial if backend == "serial" else _run_ray
        failures = run(task, todo, record, address)
    if failures:
        order = {key: i for i, key in enumerate(keys)}
        failures.sort(key=lambda failure: order[config_key(failure[0])])
        raise SweepError(failures, [done.get(key) for key in keys])
    return [done[key] for key in keys]


def _run_serial(task, todo, record, address) -> list[tuple[dict, str]]:
    if address is not None:
        raise ValueError("address is only used by backend='ray'")
    failures = []
    for key, config in todo:
        try:
            record(key, config, task(config))
        except Exception:  # a failing configuration must not cost the others' results
            failures.append((config, traceback.format_exc()))
    return failures


def _run_ray(task, todo, record, address) -> list[tuple[dict, str]]:
    try:
        import ray
    except ImportError as err:
        raise ImportError("backend='ray' needs Ray: pip install 'mechzoo[ray]'") from err
    if not todo:
        return []
    if not ray.is_initialized():  # stays up for the process's later sweeps; Ray stops it at exit
        ray.init(address=address)
    remote = ray.remote(max_retries=RAY_MAX_RETRIES)(_call)
    task_ref = ray.put(task)
    pending = {remote.remote(task_ref, config): (key, config) for key, config in todo}
    failures = []
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        key, config = pending.pop(ready[0])
        try:
            record(key, config, ray.get(ready[0]))
        except Exception as err:  # a task error, a bad result, or a worker that died past its retries
            failures.append((config, f"{type(err).__name__}: {err}"))
    return failures


def _call(task: Callable[[dict], dict], config: dict) -> dict:
    return task(config)


def _validate(task, configs, backend) -> list[str]:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if not callable(task):
        raise ValueError(f"task must be callable, got {type(task).__name__}")
    if not isinstance(configs, (list, tuple)):
        raise ValueError(f"configs must be a list of dicts, got {type(configs).__name__}")
    keys, seen = [], {}
    for i, config in enumerate(configs):
        if not isinstance(config, dict):
            raise ValueError(f"configs[{i}] must be a dict, got {type(config).__name__}")
        seed = config.get("seed")
        if seed is None:
            raise ValueError(f"configs[{i}] has no 'seed'; every configuration needs its own integer seed")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"configs[{i}]['seed'] must be an integer, got {seed!r}")
        try:
            key = config_key(config)
        except (TypeError, ValueError) as err:
            raise ValueError(f"configs[{i}] is not JSON-serialisable: {err}") from err
        if key in seen:
            raise ValueError(f"configs[{i}] duplicates configs[{seen[key]}]: {key}")
        seen[key] = i
        keys.append(key)
    return keys


def _load_checkpoint(path: Path, wanted: set[str]) -> dict[str, Any]:
    """Results already in the checkpoint for the wanted keys. A torn last line (the previous run
    was killed while writing it) is cut off the file, so that new records start on a fresh line."""
    if not path.exists():
        return {}
    done = {}
    lines = path.read_text().splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            key, result = entry["key"], entry["result"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            if number == len(lines):
                path.write_text("".join(lines[:-1]))
                break
            raise ValueError(f"checkpoint {path} line {number} is not a sweep record: {err}") from err
        if key in wanted:
            done[key] = result
    return done


def _checkpoint_line(key: str, config: dict, result: Any) -> str:
    if not isinstance(result, dict):
        raise ValueError(f"task must return a dict, got {type(result).__name__} for {key}")
    try:
        return json.dumps({"key": key, "config": config, "result": result}, default=_json_default,
                          allow_nan=True)
    except (TypeError, ValueError) as err:
        raise ValueError(f"the result for {key} is not JSON-serialisable: {err}") from err


def _json_default(obj: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")
