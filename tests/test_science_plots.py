"""The science plots and tables (evaluate/plots.py) and their place in the report."""

from __future__ import annotations

import math

import pytest

from langshift.errors import ConfigError
from langshift.evaluate import plots
from langshift.evaluate.report import build_report

CONV = {"original": {"bits_per_byte": [2.5, 2.4, 2.6]},
        "curves": {"fvt": {"points": {"10": [2.6, 2.5, 2.7], "0": [2.9, 2.8, 3.0]}, "steps_to_reach_original": None},
                   "salt": {"points": {"0": [2.7, 2.6, 2.8], "10": [2.45, 2.4, 2.5]},
                            "steps_to_reach_original": 10}}}
CLO = {"runs": {"base": {"target_prompts_answered_in_target": {"share": 0.25},
                         "english_prompts_answered_in_english": {"share": 0.9}}},
       "summary": {"sft": {"200": {"seeds": 3, "target_in_target": [0.8, 0.05], "english_in_english": [1.0, 0.0]},
                           "100": {"seeds": 3, "target_in_target": [0.6, 0.1], "english_in_english": [0.9, 0.02]}},
                   "clo": {"100": {"seeds": 1, "target_in_target": [0.7, math.nan],
                                   "english_in_english": [0.95, math.nan],
                                   "vs_sft": {"seeds": 1, "difference": [0.1, math.nan], "only_clo": 9,
                                              "only_sft": 3, "prompt_bootstrap_95": [-0.02, 0.22]}}}}}


def test_convergence_series_sorted_by_step():
    series = plots.convergence_series(CONV)
    assert series["fvt"] == ([0, 10], [2.9, 2.6], [2.8, 2.5], [3.0, 2.7])


def test_convergence_table_rows_and_reach():
    lines = plots.convergence_markdown(CONV).strip().splitlines()
    assert lines[0] == "| init | step 0 | step 10 | steps to reach original |"
    assert lines[2].startswith("| original model, own tokenizer | 2.500 [2.400, 2.600] |")
    assert "| fvt | 2.900 [2.800, 3.000] | 2.600 [2.500, 2.700] | not reached |" in lines
    assert "| salt | 2.700 [2.600, 2.800] | 2.450 [2.400, 2.500] | 10 |" in lines


def test_clo_table_has_mean_and_standard_error_and_base_row():
    md = plots.clo_size_markdown(CLO)
    lines = md.strip().splitlines()
    assert lines[2] == "| no alignment | — | — | 0.250 | 0.900 | — |"
    assert "| sft | 100 | 3 | 0.600 ± 0.100 | 0.900 ± 0.020 | — |" in lines
    assert lines.index("| sft | 100 | 3 | 0.600 ± 0.100 | 0.900 ± 0.020 | — |") < lines.index(
        "| sft | 200 | 3 | 0.800 ± 0.050 | 1.000 ± 0.000 | — |")  # sizes ascending (numerically)
    # one seed: no standard error shown; the paired comparison with SFT: Δ, its interval, discordant prompts
    assert "| clo | 100 | 1 | 0.700 | 0.950 | +0.100 [-0.020, +0.220] (9:3) |" in lines


def test_plots_written(tmp_path):
    assert plots.plot_convergence(CONV, tmp_path / "c.png").stat().st_size > 1000
    assert plots.plot_clo_sizes(CLO, tmp_path / "s.png").stat().st_size > 1000


def test_wrong_json_named_in_error():
    with pytest.raises(ConfigError, match="curves"):
        plots.convergence_series({"runs": {}})
    with pytest.raises(ConfigError, match="summary"):
        plots.clo_size_rows({"curves": {}})


def test_report_includes_science_when_results_exist(tmp_path):
    import json

    sci = tmp_path / "sci"
    sci.mkdir()
    (sci / plots.CONVERGENCE_FILE).write_text(json.dumps(CONV))
    (sci / plots.CLO_FILE).write_text(json.dumps(CLO))
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_log.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n')
    res = build_report([run], tmp_path / "rep", science=sci)
    assert {"convergence.png", "clo_sizes.png"} <= set(res["files"])
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "salt: 10" in page and "fvt: not reached" in page and "0.600 ± 0.100" in page
    # a grid from another starting model (science_clo_<name>.json) gets its own section and plot
    (sci / "science_clo_transferred.json").write_text(json.dumps({**CLO, "settings": {"model": "run/lapt/model"}}))
    res4 = build_report([run], tmp_path / "rep4", science=sci)
    assert {"clo_sizes.png", "clo_sizes_transferred.png"} <= set(res4["files"])
    assert "from run/lapt/model" in (tmp_path / "rep4" / "index.html").read_text()
    # an absolute (often temporary) path is named by its last three parts
    (sci / "science_clo_transferred.json").write_text(
        json.dumps({**CLO, "settings": {"model": "/tmp/tmp.AbC123/demo/lapt/model"}}))
    build_report([run], tmp_path / "rep5", science=sci)
    page5 = (tmp_path / "rep5" / "index.html").read_text()
    assert "from …/demo/lapt/model" in page5 and "tmp.AbC123" not in page5
    (sci / "science_clo_transferred.json").unlink()
    # a CLO file with only the untrained model: no data-size section
    (sci / plots.CLO_FILE).write_text(json.dumps({**CLO, "summary": {}}))
    res3 = build_report([run], tmp_path / "rep3", science=sci)
    assert "clo_sizes.png" not in res3["files"] and "convergence.png" in res3["files"]
    # without the folder, nothing of it appears
    res2 = build_report([run], tmp_path / "rep2")
    assert "convergence.png" not in res2["files"]


def _syncs_run(layers):
    return {"mexa_layers": layers, "mexa_pair_rate": [0.1, 0.2]}


SYNCS = {"runs": {"base": _syncs_run([0.0, 0.1, 0.05]), "none|0": _syncs_run([0.0, 0.2, 0.1]),
                  "token-repl|0": _syncs_run([0.1, 0.4, 0.2]), "token-annt|0": _syncs_run([0.0, 0.3, 0.1])},
         "summary": {"token-annt": {"seeds": 1, "mexa_mean": [0.133, 0.1, 0.2], "mexa_max_layer": 0.3,
                                    "bits_es": [2.5, 2.4, 2.6], "bits_en": [1.5, 1.4, 1.6]},
                     "base": {"seeds": 1, "mexa_mean": [0.05, 0.0, 0.1], "mexa_max_layer": 0.1,
                              "bits_es": [2.9, 2.8, 3.0], "bits_en": [1.4, 1.3, 1.5]},
                     "token-repl": {"seeds": 1, "mexa_mean": [0.233, 0.15, 0.3], "mexa_max_layer": 0.4,
                                    "bits_es": [2.4, 2.3, 2.5], "bits_en": [1.5, 1.4, 1.6]},
                     "paired": {"token-repl - token-annt": {"mexa_mean": [0.1, -0.0, 0.2],
                                                            "bits_es": [-0.1, -0.2, -0.05],
                                                            "bits_en": [0.0, -0.01, 0.01]}}}}


def test_syncs_table_orders_arms_and_shows_paired_differences(tmp_path):
    lines = plots.syncs_markdown(SYNCS).strip().splitlines()
    rows = [line for line in lines if line.startswith("| ") and "|---" not in line]
    assert rows[1].startswith("| nothing (the model as it is) | 1 | 0.050 [0.000, 0.100] | 0.100 |")
    assert rows[2].startswith("| token-repl |") and rows[3].startswith("| token-annt |")  # fixed order
    assert "| token-repl - token-annt | +0.100 [+0.000, +0.200] | -0.100 [-0.200, -0.050] |" in lines[-1]
    assert plots.plot_syncs_layers(SYNCS, tmp_path / "m.png").stat().st_size > 1000
    import json

    sci = tmp_path / "sci"
    sci.mkdir()
    (sci / plots.SYNCS_FILE).write_text(json.dumps(SYNCS))
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_log.jsonl").write_text('{"step": 1, "loss": 2.0}\n')
    res = build_report([run], tmp_path / "rep", science=sci)
    assert "syncs_mexa.png" in res["files"]
    assert "replacement vs annotation" in (tmp_path / "rep" / "index.html").read_text()
