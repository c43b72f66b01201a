"""The learned-mechanism evaluation harness: ratios to PF with paired-bootstrap intervals, resume,
paired comparisons of saved evaluations."""
import json

import numpy as np
import pytest

from mechzoo.baselines.learned_eval import (compare, format_table, lottery_with_pf, main, paired_difference,
                                           plot_measurements,
                                            parse_mechanism_spec, ratios_to_pf, run)


def rows_with(gain, nsw, log_nsw):
    return {"gain": np.asarray(gain), "nsw": np.asarray(nsw), "log_nsw": np.asarray(log_nsw)}


def test_ratios_to_pf_are_ratios_of_means_with_paired_intervals():
    rng = np.random.default_rng(0)
    gain, nsw = rng.exponential(1.0, 300), rng.uniform(0.5, 1.0, 300)
    pf = rows_with(gain, nsw, np.log(nsw))
    same = ratios_to_pf(pf, pf)
    assert same["exploitability_vs_pf"] == 1.0 and same["exploitability_vs_pf_low"] == same["exploitability_vs_pf_high"] == 1.0
    # a mechanism that cuts every profile's gain to a fifth: the paired interval is exactly 0.2
    fifth = ratios_to_pf(pf, rows_with(gain / 5, nsw * 0.99, np.log(nsw * 0.99)))
    assert fifth["exploitability_vs_pf"] == pytest.approx(0.2)
    assert fifth["exploitability_vs_pf_low"] == pytest.approx(0.2) == pytest.approx(fifth["exploitability_vs_pf_high"])
    assert fifth["nsw_vs_pf"] == pytest.approx(0.99) and fifth["log_nsw_minus_pf"] == pytest.approx(np.log(0.99))
    # noise independent of PF's gains widens the interval around the ratio of the means
    noisy = ratios_to_pf(pf, rows_with(rng.exponential(0.2, 300), nsw, np.log(nsw)))
    assert noisy["exploitability_vs_pf_low"] < noisy["exploitability_vs_pf"] < noisy["exploitability_vs_pf_high"]


def test_paired_difference_is_the_difference_of_ratios_with_a_paired_interval():
    rng = np.random.default_rng(1)
    gain, nsw = rng.exponential(1.0, 400), rng.uniform(0.5, 1.0, 400)
    pf = rows_with(gain, nsw, np.log(nsw))
    half, fifth = rows_with(gain / 2, nsw, np.log(nsw)), rows_with(gain / 5, nsw * 0.98, np.log(nsw * 0.98))
    diff = paired_difference(pf, fifth, half)
    # every profile's gain moves by the same fraction of PF's: the interval is the point
    assert diff["exploitability"] == pytest.approx(0.2 - 0.5)
    assert diff["exploitability_low"] == pytest.approx(-0.3) == pytest.approx(diff["exploitability_high"])
    assert diff["nsw"] == pytest.approx(-0.02) == pytest.approx(diff["nsw_low"])
    assert diff == paired_difference(pf, fifth, half)  # the draws are seeded
    # it is the difference of the two ratios to PF, on the same draws
    noisy = rows_with(rng.exponential(0.3, 400), nsw, np.log(nsw))
    a, b = ratios_to_pf(pf, noisy), ratios_to_pf(pf, half)
    diff = paired_difference(pf, noisy, half)
    assert diff["exploitability"] == pytest.approx(a["exploitability_vs_pf"] - b["exploitability_vs_pf"])
    assert diff["exploitability_low"] < diff["exploitability"] < diff["exploitability_high"]
    with pytest.raises(ValueError, match="same profiles"):
        paired_difference(pf, rows_with(gain[:10], nsw[:10], nsw[:10]), half)
    with pytest.raises(ValueError, match="PF's mean exploitability"):
        paired_difference(rows_with(0 * gain, nsw, np.log(nsw)), fifth, half)
    with pytest.raises(ValueError, match="PF's mean exploitability"):  # round-off, as ratios_to_pf treats it
        paired_difference(rows_with(1e-16 * gain, nsw, np.log(nsw)), fifth, half)
    rare = np.where(np.arange(400) == 0, 1.0, 0.0)  # PF exploitable on one profile of 400
    with pytest.raises(ValueError, match="too many bootstrap resamples"):
        paired_difference(rows_with(rare, nsw, np.log(nsw)), rows_with(rare / 2, nsw, nsw), half)


def test_compare_reads_rows_from_several_evaluations_of_one_test_set(tmp_path, capsys):
    kwargs = dict(profiles=60, oracle_restarts=1, oracle_steps=2, oracle_pool=4)
    run(tmp_path / "a", 2, 2, {"pf": "pf", "equal": "equal"}, **kwargs)
    run(tmp_path / "b", 2, 2, {"pf": "pf", "pa": "pa"}, **kwargs)
    per_a = json.loads((tmp_path / "a" / "per_profile.json").read_text())
    per_b = json.loads((tmp_path / "b" / "per_profile.json").read_text())
    diff = compare([tmp_path / "a", tmp_path / "b"], "equal", "pa")
    assert diff == paired_difference(per_a["pf"], per_a["equal"], per_b["pa"])
    assert diff["exploitability"] < 0  # the uniform rule gains nothing, PA's random pool finds something
    main(["--compare", "equal", "pa", "--results", str(tmp_path / "a"), str(tmp_path / "b")])
    assert f"{diff['exploitability']:+.4f}" in capsys.readouterr().out
    with pytest.raises(ValueError, match="no row"):
        compare([tmp_path / "a"], "equal", "pa")
    run(tmp_path / "other", 2, 2, {"pf": "pf"}, **{**kwargs, "seed": 5})
    with pytest.raises(ValueError, match="another test set"):
        compare([tmp_path / "a", tmp_path / "other"], "pf", "equal")
    # PF's row agrees up to round-off across folders; a real difference is refused
    path = tmp_path / "b" / "per_profile.json"
    largest = int(np.argmax(per_b["pf"]["gain"]))
    per_b["pf"]["gain"][largest] *= 1 + 1e-13
    path.write_text(json.dumps(per_b))
    assert compare([tmp_path / "a", tmp_path / "b"], "equal", "pa") == pytest.approx(diff)
    per_b["pf"]["gain"][largest] *= 1.01
    path.write_text(json.dumps(per_b))
    with pytest.raises(ValueError, match="row 'pf' differs"):
        compare([tmp_path / "a", tmp_path / "b"], "equal", "pa")
    with pytest.raises(ValueError, match="holds no evaluation"):
        compare([tmp_path / "missing"], "pf", "equal")
    with pytest.raises(SystemExit):
        main(["--compare", "equal", "pa"])  # no --results


def test_plot_measurements_draws_one_test_set_under_several_oracles(tmp_path, capsys):
    kwargs = dict(profiles=30, oracle_restarts=1, oracle_steps=2, oracle_pool=4)
    run(tmp_path / "complete", 2, 2, {"pf": "pf", "equal": "equal"}, **kwargs)
    run(tmp_path / "from truth", 2, 2, {"pf": "pf", "equal": "equal"}, oracle_from_truth=True, **kwargs)
    figure = tmp_path / "measurements.png"
    main(["--plot-measurements", str(figure), "--results", str(tmp_path / "complete"), str(tmp_path / "from truth")])
    assert figure.stat().st_size > 0 and str(figure) in capsys.readouterr().out
    run(tmp_path / "other", 2, 2, {"pf": "pf"}, **{**kwargs, "seed": 5})
    with pytest.raises(ValueError, match="different test sets"):
        plot_measurements([tmp_path / "complete", tmp_path / "other"], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="holds no evaluation"):
        plot_measurements([tmp_path / "missing"], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
    with pytest.raises(SystemExit):
        main(["--plot-measurements", str(figure)])  # no --results


def test_run_writes_ratios_and_resumes(tmp_path):
    kwargs = dict(profiles=30, oracle_restarts=1, oracle_steps=2, oracle_pool=4)
    rows = run(tmp_path, 2, 2, {"pf": "pf", "equal": "equal"}, **kwargs)
    by_name = {r["mechanism"]: r for r in rows}
    assert by_name["pf"]["exploitability_vs_pf"] == 1.0
    assert by_name["equal"]["exploitability"] == 0.0  # the uniform rule is strategy-proof
    assert by_name["equal"]["nsw_vs_pf"] < 1.0 and by_name["equal"]["log_nsw_minus_pf"] < 0
    per_profile = json.loads((tmp_path / "per_profile.json").read_text())
    assert len(per_profile["pf"]["gain"]) == 30
    assert (tmp_path / "table.png").stat().st_size > 0 and (tmp_path / "tradeoff.png").stat().st_size > 0
    table = format_table(rows)
    assert "expl. / PF's" in table and "| equal |" in table
    # resume: finished rows are read back, not recomputed
    saved = json.loads((tmp_path / "rows.json").read_text())
    saved["equal"]["efficiency"] = -1.0
    (tmp_path / "rows.json").write_text(json.dumps(saved))
    again = {r["mechanism"]: r for r in run(tmp_path, 2, 2, {"pf": "pf", "equal": "equal"}, **kwargs)}
    assert again["equal"]["efficiency"] == -1.0


def test_program_only_oracle_is_applied_to_rpf_net_and_labelled(tmp_path):
    """``rpf_network_gradient=False``: RPF-Net (by name or weights file) is searched through its PF
    program only, the row says so, and the allocation (so the NSW) is unchanged."""
    from mechzoo.mechanisms import make_one_shot
    from mechzoo.mechanisms.learned import shipped_weights_path

    kwargs = dict(profiles=40, oracle_steps=5, oracle_from_truth=True)
    mechanisms = {"pf": "pf", "rpf_net": "rpf_net", "file": str(shipped_weights_path("rpf_net", 2, 2))}
    program = {r["mechanism"]: r for r in run(tmp_path / "program", 2, 2, mechanisms, rpf_network_gradient=False,
                                               **kwargs)}
    full = {r["mechanism"]: r for r in run(tmp_path / "full", 2, 2, mechanisms, **kwargs)}
    assert program["pf"]["oracle"] == full["pf"]["oracle"] and program["pf"]["exploitability"] == full["pf"]["exploitability"]
    for label in ("rpf_net", "file"):
        assert program[label]["oracle"] == full[label]["oracle"] + ", through RPF-Net's PF program only"
        assert program[label]["nsw"] == full[label]["nsw"]
    assert program["rpf_net"]["exploitability"] == program["file"]["exploitability"]
    with pytest.raises(ValueError, match="by name or weights file"):
        run(tmp_path / "object", 2, 2, {"r": make_one_shot("rpf_net")}, rpf_network_gradient=False, **kwargs)


def test_lottery_with_pf_mixes_pf_with_the_other_mechanism():
    # rho = 0 is the other mechanism alone, rho = 1 PF alone; in between, the expected NSW of the
    # coin flip and the mix of the exploitabilities: PF with probability 0.2 against the uniform
    # rule (no exploitability, 90.8% of PF's NSW) gives at most 0.2 of PF's exploitability, 0.9264 of its NSW
    exploitability, nsw = lottery_with_pf([0.0, 0.2, 1.0], 0.0, 0.908)
    np.testing.assert_allclose(exploitability, [0.0, 0.2, 1.0])
    np.testing.assert_allclose(nsw, [0.908, 0.9264, 1.0])
    exploitability, _ = lottery_with_pf(0.5, 0.4, 0.9)
    assert exploitability == pytest.approx(0.7)
    with pytest.raises(ValueError, match=r"rho \(PF's probability in the lottery\) must lie in \[0, 1\]"):
        lottery_with_pf(1.3, 0.0, 0.9)


def test_oracle_fields_restrict_what_a_misreport_may_change(tmp_path):
    # Under PF a demand misreport alone gains nothing (over-claiming only adds what the agent does
    # not need); value misreports are where PF's exploitability lives.
    kwargs = dict(profiles=40, oracle_restarts=2, oracle_steps=10, oracle_pool=16)
    demands = run(tmp_path / "demands", 2, 2, {"pf": "pf"}, oracle_fields="demands", **kwargs)[0]
    values = run(tmp_path / "values", 2, 2, {"pf": "pf"}, oracle_fields="values", **kwargs)[0]
    assert "demands" in demands["oracle"] and "values" in values["oracle"]
    assert demands["exploitability"] < 1e-9 < values["exploitability"]
    # no fraction of an exploitability that is round-off: the ratio is left out, the table shows "–"
    assert "exploitability_vs_pf" not in demands and values["exploitability_vs_pf"] == 1.0
    assert "| pf |" in format_table([demands]) and format_table([demands]).count("| – |") == 1
    with pytest.raises(ValueError, match="fields must be one of"):
        run(tmp_path / "bad", 2, 2, {"pf": "pf"}, oracle_fields="budgets", **kwargs)
    assert not (tmp_path / "bad").exists()


def test_mechanism_specs_carry_numeric_options():
    assert parse_mechanism_spec("pf") == ("pf", {})
    assert parse_mechanism_spec("head_start:head_start_weight=0.5") == ("head_start", {"head_start_weight": 0.5})
    assert parse_mechanism_spec("x:a=1, b=2e-3") == ("x", {"a": 1.0, "b": 0.002})
    with pytest.raises(ValueError, match="key=value"):
        parse_mechanism_spec("head_start:head_start_weight")
    with pytest.raises(ValueError, match="must be a number"):
        parse_mechanism_spec("head_start:head_start_weight=high")


def test_run_labels_rows_by_spec_and_bad_options_fail_before_any_row(tmp_path, capsys):
    kwargs = dict(profiles=20, oracle_restarts=1, oracle_steps=2, oracle_pool=4)
    rows = run(tmp_path / "ok", 2, 2, {"head_start:head_start_weight=0": "head_start:head_start_weight=0",
                                       "equal": "equal"}, **kwargs)
    by_name = {r["mechanism"]: r for r in rows}
    assert by_name["head_start:head_start_weight=0"]["nsw"] == pytest.approx(by_name["equal"]["nsw"], rel=1e-12)
    for bad, message in (("head_start:weight_of_head=1", "allowed: head_start_weight"),
                         ("head_start:head_start_weight=-1", "head_start_weight must be")):
        with pytest.raises(SystemExit):
            main(["--mechanisms", "pf", bad, "--profiles", "5", "--out", str(tmp_path / "bad")])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
