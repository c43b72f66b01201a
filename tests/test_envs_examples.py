"""Smoke tests: the env example and benchmark scripts run (tiny sizes)."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(path: Path, argv: list[str], monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(path)] + argv)
    runpy.run_path(str(path), run_name="__main__")


def test_rollout_policies_example(monkeypatch, capsys):
    _run(ROOT / "examples" / "rollout_policies.py", ["--episodes", "2", "--horizon", "3"], monkeypatch)
    out = capsys.readouterr().out
    assert "sama(pf), truthful policy" in out and "independent(pf), random policy" in out
    assert "+0.0000" in out


def test_env_throughput_benchmark_runs(monkeypatch, capsys):
    _run(ROOT / "benchmarks" / "env_throughput.py",
         ["--seconds", "0.2", "--n-envs", "16", "--reference-steps", "3", "--reference-envs", "2"], monkeypatch)
    out = capsys.readouterr().out
    assert "vs cvxpy" in out and "extrapolated" in out
