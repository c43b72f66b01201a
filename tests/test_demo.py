"""The README's main job, on a small setting."""
import json
import math

from mechzoo.cli import main


def test_demo_writes_table_and_plot(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--profiles", "12", "--horizon", "3", "--ppo-timesteps", "64"]) == 0
    for name in ("summary.csv", "summary.json", "summary.png"):
        assert (tmp_path / name).stat().st_size > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = summary["rows"]
    assert [r["mechanism"] for r in rows] == ["sama(pf)", "independent(pf)", "sama(pa)", "independent(pa)"]
    pa = [r for r in rows if r["mechanism"].endswith("(pa)")]
    assert all(r["one_shot_exploitability"] < 1e-6 for r in pa)  # PA is incentive compatible
    assert all(0 < r["efficiency_mean"] <= 1 for r in rows)
    assert all(r["full_exploitability"] >= 0 for r in rows)
    assert rows[0]["full_exploitability"] > 0  # SAMA(PF) is manipulable over the horizon
    assert math.isfinite(rows[0]["ppo_gain_agent_0"]) and rows[0]["ppo_train_seconds"] > 0
    assert rows[0]["full_gain_agent_0"] >= 0
    assert all(math.isnan(r["ppo_gain_agent_0"]) for r in rows[1:])
    assert summary["setting"]["ppo_oracle"].startswith("ppo(total_timesteps=64")
    assert "sama(pf)" in capsys.readouterr().out


def test_cli_reports_bad_arguments(capsys):
    assert main(["demo", "--out", "/tmp/unused", "--profiles", "2", "--horizon", "0"]) == 2
    assert "horizon must be >= 1" in capsys.readouterr().err
    assert main(["exploit", "--oracle", "grid", "--mechanism", "sama", "--profiles", "2"]) == 2
    assert "one-shot" in capsys.readouterr().err
    assert main(["train", "--algo", "sarsa", "--out", "/tmp/unused"]) == 2
    assert "algo must be" in capsys.readouterr().err
