"""bench/science.py's CLO-grid summary: the paired comparison with SFT and the untrained model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("science", Path(__file__).parents[1] / "bench" / "science.py")
science = importlib.util.module_from_spec(spec)
spec.loader.exec_module(science)


def run(langs: str) -> dict:
    """A run whose target-prompt answers were identified as ``langs`` (one letter per prompt: s = es)."""
    codes = ["es" if c == "s" else "en" for c in langs]
    return {"target_prompts_answered_in_target": {"share": codes.count("es") / len(codes)},
            "english_prompts_answered_in_english": {"share": 1.0},
            "answers": [{"id": str(i), "target_answer_lang": c} for i, c in enumerate(codes)]}


def test_paired_differences_per_seed_and_discordant_prompts_pooled():
    runs = {"base": run("seee"), "clo|100|0": run("ssse"), "sft|100|0": run("sese"),
            "clo|100|1": run("ssss"), "sft|100|1": run("ssee"), "clo|200|0": run("eeee")}
    s = science.summarise(runs, "es")
    vs_sft = s["clo"]["100"]["vs_sft"]
    assert vs_sft["seeds"] == 2
    assert vs_sft["difference"][0] == pytest.approx((0.25 + 0.5) / 2)
    assert (vs_sft["only_clo"], vs_sft["only_sft"]) == (3, 0)  # seed 0: prompt 1; seed 1: prompts 2 and 3
    assert s["clo"]["100"]["vs_base"]["only_clo"] == 2 + 3
    assert "vs_sft" not in s["sft"]["100"] and "vs_sft" not in s["clo"]["200"]  # no SFT run at 200 pairs
    assert s["clo"]["200"]["vs_base"]["only_base"] == 1
    lo, hi = vs_sft["prompt_bootstrap_95"]
    assert 0.0 <= lo <= vs_sft["difference"][0] <= hi <= 0.75  # per prompt: +0.5, +0.5, +0.5, 0 (never negative)


def test_bootstrap_resamples_prompts_not_seeds():
    """Two seeds that agree prompt by prompt: the interval is as wide as one seed's (the prompts are shared)."""
    one = {"base": run("ssee" * 8), "clo|100|0": run("sese" * 8)}
    two = {**one, "clo|100|1": run("sese" * 8)}
    assert (science.summarise(one)["clo"]["100"]["vs_base"]["prompt_bootstrap_95"]
            == science.summarise(two)["clo"]["100"]["vs_base"]["prompt_bootstrap_95"])


def syncs_run(rate: list[float], bits_es: list[float]) -> dict:
    return {"mexa_layers": [float(sum(rate) / len(rate))] * 3, "mexa_pair_rate": rate,
            "bits_es": bits_es, "bits_en": [10.0] * len(bits_es),
            "bytes_es": [5] * len(bits_es), "bytes_en": [5] * len(bits_es)}


def test_syncs_summary_pairs_the_same_items():
    """repl − annt is computed item by item: MEXA per pair, bits per verse over the verses' bytes."""
    base = syncs_run([0.0, 0.0, 0.0, 0.0], [12.0] * 4)
    runs = {"base": base, "none|0": syncs_run([0.0, 0.0, 0.5, 0.0], [11.0] * 4),
            "token-repl|0": syncs_run([1.0, 0.5, 0.5, 0.0], [9.0, 9.0, 9.0, 9.0]),
            "token-annt|0": syncs_run([0.0, 0.5, 0.5, 0.0], [10.0, 10.0, 10.0, 10.0]),
            "sent-repl|0": syncs_run([0.5, 0.5, 0.5, 0.5], [10.0] * 4),
            "sent-annt|0": syncs_run([0.5, 0.5, 0.5, 0.5], [10.0] * 4)}
    s = science.summarise_syncs(runs, reps=500)
    tok = s["paired"]["token-repl - token-annt"]
    assert tok["mexa_mean"][0] == pytest.approx(0.25)
    assert tok["bits_es"][0] == pytest.approx(-1.0 / 5)            # 1 bit less per verse of 5 bytes
    assert tok["bits_es"][1] == tok["bits_es"][2] == pytest.approx(-0.2)  # the same difference on every verse
    assert tok["mexa_mean"][1] >= 0.0 and tok["mexa_mean"][2] <= 1.0
    assert s["paired"]["sent-repl - sent-annt"]["mexa_mean"] == [0.0, 0.0, 0.0]  # identical arms: zero, no width
    assert s["token-repl"]["bits_es"][0] == pytest.approx(9.0 / 5)
    assert s["none"]["mexa_mean"][0] == pytest.approx(0.125)
    assert "sent-annt - none" in s["paired"] and "none - none" not in s["paired"]


def test_clo_grid_refuses_a_data_folder_made_for_other_prompts(tmp_path, monkeypatch):
    """The held-out prompts are the data folder's last pairs: a folder made from another number of English pairs
    (here by an older run sized from its own --pairs) holds out other prompts, so the grid stops before training."""
    data = tmp_path / "clo_data"
    data.mkdir()
    (data / "sft.jsonl").write_text("".join(f'{{"id": "{i}", "instruction": "i", "response": "r"}}\n' for i in range(298)))
    (data / "clo.jsonl").write_text("".join(f'{{"id": "{i}", "x_en": "q", "y_en": "a", "x_t": "p", "y_t": "r"}}\n'
                                            for i in range(298)))
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "bench"))
    monkeypatch.setattr("sys.argv", ["science.py", "clo", "--pairs", "200", "--data-dir", str(data), "--skip-base",
                                     "--results", str(tmp_path / "r.json")])
    with pytest.raises(SystemExit, match="made from 298 English pairs, this run needs 518"):
        science.main()
    assert not (tmp_path / "r.json").exists()


def judged_run(target: list[str], english: list[str]) -> dict:
    return {"answers": [{"id": str(i), "target_answer": t, "english_answer": e}
                        for i, (t, e) in enumerate(zip(target, english, strict=True))]}


def test_judge_cells_rank_each_method_against_sft_of_the_same_cell(monkeypatch):
    """A judge that ranks first the output holding WIN: the win rates are counted per cell and side, the order
    shown is randomised (both orders come up), target prompts get the language clause and English ones do not,
    and a resumed call judges nothing twice."""
    import json as _json

    from langshift.evaluate.judge import LANGUAGE_CLAUSE

    asked, shown_first = [], []

    def ask(messages):
        user = messages[-1]["content"]
        asked.append(user)
        if "WIN" not in user:  # neither output: a tie
            return _json.dumps({"ordered_models": [{"model": "m", "rank": 1}, {"model": "M", "rank": 1}]})
        first = user.index("WIN") < user.index('"model": "M"')
        shown_first.append(first)
        order = ["m", "M"] if first else ["M", "m"]
        return _json.dumps({"ordered_models": [{"model": order[0], "rank": 1}, {"model": order[1], "rank": 2}]})

    prompts = {str(i): {"x_t": f"pregunta {i}", "x_en": f"question {i}"} for i in range(4)}
    runs = {"base": judged_run(["a"] * 4, ["a"] * 4),
            "sft|100|0": judged_run(["s"] * 4, ["s"] * 4), "clo|100|0": judged_run(["WIN", "WIN", "WIN", "c"],
                                                                                    ["WIN", "c", "c", "c"]),
            "sft|100|1": judged_run(["WIN"] * 4, ["s"] * 4), "clo|100|1": judged_run(["c"] * 4, ["WIN"] * 4),
            "clo|200|0": judged_run(["WIN"] * 4, ["WIN"] * 4)}   # no SFT run at 200 pairs: not judged
    cells = science.judge_cells(runs, prompts, ask, "es")
    assert sorted(cells) == ["clo|100|0|english", "clo|100|0|target", "clo|100|1|english", "clo|100|1|target"]
    assert cells["clo|100|0|target"]["win_rate_a"] == pytest.approx(3.5 / 4)  # 3 wins, a tie
    assert cells["clo|100|0|english"]["win_rate_a"] == pytest.approx(2.5 / 4)  # a win, 3 ties
    assert cells["clo|100|0|english"]["ties"] == 3 and set(shown_first) == {True, False}
    assert cells["clo|100|1|target"]["win_rate_a"] == 0.0 and cells["clo|100|1|english"]["win_rate_a"] == 1.0
    assert len(asked) == 16
    assert sum(LANGUAGE_CLAUSE in u for u in asked) == 8 and all(LANGUAGE_CLAUSE not in u for u in asked
                                                                   if "question" in u)
    summary = science.summarise_judge(cells)["clo"]["100"]
    assert summary["target"]["seeds"] == 2 and summary["target"]["per_seed"] == {0: 0.875, 1: 0.0}
    assert summary["target"]["win_rate"][0] == pytest.approx(0.4375)
    assert summary["target"]["win_rate"][1] == pytest.approx(0.4375)  # sd 0.619 / sqrt(2)
    assert science.judge_cells(runs, prompts, ask, "es", cells=cells) == cells and len(asked) == 16
    bad = {**runs, "clo|100|0": {"answers": runs["clo|100|0"]["answers"][::-1]}}
    with pytest.raises(SystemExit, match="answered different prompts"):
        science.judge_cells(bad, prompts, ask, "es")
    with pytest.raises(SystemExit, match="no prompt '3'"):
        science.judge_cells(runs, {k: v for k, v in prompts.items() if k != "3"}, ask, "es")


def test_judge_without_an_endpoint_stops_with_the_flag(monkeypatch):
    monkeypatch.delenv("LANGSHIFT_JUDGE_URL", raising=False)
    monkeypatch.setattr("sys.argv", ["science.py", "judge"])
    with pytest.raises(SystemExit, match="--url: no judge endpoint"):
        science.main()
