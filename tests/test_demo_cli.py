"""Fast checks of `langshift demo`: flags, validation before any work, the held-out split, the table,
and the two pipeline features the demo needs (transfer candidates picked by held-out bits per byte;
eval of an intermediate model with labels) on a tiny model."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import helpers
from langshift.cli import build_parser, main
from langshift.demo.inputs import Sizes, _mentions_heldout, parallel_documents, split_chapters
from langshift.demo.run import PROFILES, format_paired, format_table, paired_differences, results_table
from langshift.errors import ConfigError, LangshiftError
from langshift.evaluate.report import build_report
from langshift.pipeline import load_recipe, resolve, run_recipe


def test_flags_and_defaults():
    args = build_parser().parse_args(["demo"])
    assert (args.quick, args.out, args.overrides, args.dry_run) == (False, "./langshift-demo", [], False)
    args = build_parser().parse_args(["demo", "--quick", "--out", "d", "--set", "lapt.max_steps=2"])
    assert (args.quick, args.out, args.overrides) == (True, "d", ["lapt.max_steps=2"])
    help_text = subprocess.run([sys.executable, "-m", "langshift.cli", "demo", "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert "--quick" in help_text and "--out" in help_text


def test_out_that_is_a_file_fails_before_any_work(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    assert main(["demo", "--quick", "--out", str(path)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is a file" in err
    assert not (tmp_path / "inputs").exists()


def test_out_holding_the_other_size_fails(tmp_path, capsys):
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "manifest.json").write_text(json.dumps({"params": {"sizes": PROFILES["quick"][1].__dict__}}))
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "holds a quick demo run; add --quick" in capsys.readouterr().err


def test_bad_override_fails_before_any_work(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path / "o"), "--set", "lapt.max_stepz=3"]) == 2
    err = capsys.readouterr().err
    assert "max_stepz" in err and "max_steps" in err
    assert not (tmp_path / "o").exists()


def test_both_demo_recipes_resolve_and_differ_only_in_size():
    full, quick = (resolve(load_recipe(PROFILES[p][0])) for p in ("full", "quick"))
    assert [i.stage.name for i in full] == [i.stage.name for i in quick] == [
        "tokenizer", "migrate", "static", "transfer", "lapt", "clo_data", "clo", "eval", "report"]
    t_full, t_quick = full[3].section, quick[3].section
    assert t_full["candidates"] == t_quick["candidates"]
    assert [c if isinstance(c, str) else c["method"] for c in t_full["candidates"]] == ["migrate", "salt", "focus",
                                                                                         "mean"]
    assert full[0].section["mode"] == quick[0].section["mode"] == "extend"  # the base's own tokens are kept
    assert full[0].section["add"] > quick[0].section["add"]
    assert full[4].section["max_steps"] > quick[4].section["max_steps"]
    assert isinstance(PROFILES["quick"][1], Sizes)
    # gensim is reproducible only on one thread: with 2 the static space, and so which init wins, changed between
    # runs of the same demo (salt 3.04-3.07 vs focus 3.056 bits/byte on the selection verses)
    assert full[2].section["workers"] == quick[2].section["workers"] == 1
    # LAPT mixes in the verse pairs the inputs stage writes, half the blocks, in both sizes
    for lapt in (full[4], quick[4]):
        assert lapt.inputs["code_switched"].via == "$parallel" and lapt.section["mix_ratio"] == 0.5
    assert PROFILES["full"][1].parallel_pairs > PROFILES["quick"][1].parallel_pairs > 0


def test_heldout_split_is_fixed_and_disjoint():
    pairs = [(f"Book{b} {c}:{v}", f"en {b}{c}{v}", f"es {b}{c}{v}") for b in range(3) for c in range(1, 31)
             for v in range(1, 4)]
    split = split_chapters(pairs)
    assert split == split_chapters(list(pairs))
    chapters = {k: {p[0].rsplit(":", 1)[0] for p in v} for k, v in split.items()}
    assert chapters["select"] and chapters["test"]
    assert not (chapters["train"] & chapters["select"]) and not (chapters["train"] & chapters["test"])
    assert not (chapters["select"] & chapters["test"])
    assert sum(len(v) for v in split.values()) == len(pairs)
    assert len(chapters["select"]) + len(chapters["test"]) == 90 // 20 + (90 % 20 > 10)
    held = chapters["select"] | chapters["test"]
    some = next(iter(held))
    assert _mentions_heldout({"id": f"bible:{some}:1", "response": "x"}, held)
    assert _mentions_heldout({"id": "bible-next:Other 1:9", "response": f"The next verse is {some}:1: text"}, held)
    assert _mentions_heldout({"id": "bible-next:Other 1:9", "response": "unreadable"}, held)
    assert not _mentions_heldout({"id": "bible-next:Other 1:9", "response": "The next verse is Other 1:10: t"}, held)
    assert not _mentions_heldout({"id": "man:ls.1", "response": "x"}, held)


def test_parallel_documents_pair_each_verse_with_its_translation_in_both_orders():
    train = split_chapters([(f"Book {c}:{v}", f"en {c} {v}", f"es {c} {v}") for c in range(1, 41)
                            for v in range(1, 6)])["train"]
    docs = parallel_documents(train, 60)
    assert docs == parallel_documents(list(train), 60) and len(docs) == 60
    assert parallel_documents(train, 10 ** 6) != docs and len(parallel_documents(train, 10 ** 6)) == len(train)
    by_english = {en: es for _ref, en, es in train}
    orders = set()
    for doc in docs:
        first, second = doc["text"].split("\n")
        english, spanish = (first, second) if first.startswith("en") else (second, first)
        assert by_english[english] == spanish  # the two lines are one verse and its own translation
        orders.add(first.startswith("en"))
    assert orders == {True, False}  # both directions are read
    assert parallel_documents(train, 60, seed=1) != docs and parallel_documents(train, 0) == []


def test_results_table_and_format():
    summary = {label: {"bpb": {"bits_per_byte": b}, "fidelity": {"lpr": 0.5}, "mexa": {"mean": 0.25},
                       "mc": {"acc": 0.75}} for label, b in (("original", 2.0), ("transferred", 1.5),
                                                             ("aligned", float("nan")))}
    rows = results_table(summary)
    assert [r["model"] for r in rows] == ["original", "transferred", "aligned"]
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["model", "bits/byte"] and len(lines) == 5
    assert "2.000" in lines[2] and "1.500" in lines[3] and "nan" in lines[4]
    assert "LPR es" in lines[0] and "LPR en" in lines[0] and "[" not in lines[2]  # no interval stored, none shown
    # Stored 95% intervals follow their value; English fidelity has its own column.
    summary["original"]["bpb"].update(bits_per_byte_low=1.9, bits_per_byte_high=2.1)
    summary["original"]["fidelity_source"] = {"lpr": 0.875, "lpr_low": 0.77, "lpr_high": 0.94}
    rows = results_table(summary)
    assert rows[0]["bits/byte 95%"] == (1.9, 2.1) and rows[0]["LPR en"] == 0.875 and rows[1]["LPR en"] is None
    assert "2.000 [1.900, 2.100]" in format_table(rows).splitlines()[2]
    assert "0.875 [0.770, 0.940]" in format_table(rows).splitlines()[2]
    # Replies with nothing to judge are counted in LPR: the table says how many were judged.
    summary["aligned"]["fidelity"] = {"lpr": 1.0, "n": 4, "responses_without_judged_lines": 3}
    lines = format_table(results_table(summary)).splitlines()
    assert lines[0].split()[-1] == "judged" and lines[4].split()[-1] == "1/4"
    # Looping replies, Spanish/English prompts, get their own column once the results count them.
    summary["aligned"]["fidelity"]["looping_responses"] = 2
    summary["aligned"]["fidelity_source"] = {"lpr": 0.75, "looping_responses": 1}
    lines = format_table(results_table(summary)).splitlines()
    assert lines[0].endswith("judged  loops es/en") and lines[4].split()[-2:] == ["1/4", "2/1"]
    assert lines[2].split()[-2:] == ["–", "–"]  # a row without the counts shows a dash, not a made-up zero
    del summary["aligned"]
    with pytest.raises(LangshiftError, match="no results for 'aligned'"):
        results_table(summary)


def test_paired_differences_compare_the_same_items_of_two_models(tmp_path):
    def write(kind, model, tag, key, items):
        scores = [float(i.get("line_pass", i.get("pred") == i.get("answer"))) for i in items]
        share = sum(scores) / len(scores)  # the rows' own figures, which the side-by-side table shows
        result = {key: items, "lang": "es", "lpr": share, "wpr": 1.0, "lcpr": share, "acc": share, "acc_norm": share}
        config = {"prompts": "in/prompts.es.txt"} if kind == "fidelity" else {"tasks": "in/mc.jsonl"}
        (tmp_path / f"{kind}.{model}{tag}.json").write_text(json.dumps({"kind": kind, "model": model, "config": config,
                                                                         "result": result}), encoding="utf-8")

    passes = lambda flags: [{"line_pass": f} for f in flags]  # noqa: E731
    write("fidelity", "aligned", "", "per_response", passes([True] * 9 + [False]))
    write("fidelity", "original", "", "per_response", passes([True] * 7 + [False] * 3))
    write("mc", "aligned", ".mc", "predictions", [{"pred": 0, "answer": 0}, {"pred": 1, "answer": 0}])
    write("mc", "original", ".mc", "predictions", [{"pred": 0, "answer": 0}, {"pred": 0, "answer": 0}])
    write("mc", "transferred", ".mc", "predictions", [{"pred": 0, "answer": 0}, {"pred": 0, "answer": 0}])
    paired = paired_differences(tmp_path)
    assert set(paired) == {"LPR [prompts.es]", "acc [mc]"}        # the side-by-side table's names; no English file
    d, lo, hi = paired["LPR [prompts.es]"]
    assert d == pytest.approx(0.2) and 0.0 <= lo <= d <= hi <= 0.5  # aligned passes 2 prompts more, never fewer
    assert paired["acc [mc]"][0] == pytest.approx(-0.5)
    text = format_paired(paired)
    assert text.startswith("aligned − original") and "LPR [prompts.es] +0.200 [" in text and "acc [mc] -0.500" in text
    assert format_paired({}) == ""
    # The report adds the same comparison for every model against the run's first (the order recorded)
    (tmp_path / "models.json").write_text(json.dumps({"models": ["original", "transferred", "aligned"]}))
    report = build_report([tmp_path], tmp_path / "report")
    md = (tmp_path / "report" / "results.md").read_text(encoding="utf-8")
    assert "| aligned − original | -0.500 [-1.000, +0.000] | +0.200 [+0.000, +0.500] |" in md   # MC, then LPR
    assert "| transferred − original | +0.000 [+0.000, +0.000] |  |" in md                      # no fidelity file
    assert "Against the first model" in (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert report["files"][:2] == ["index.html", "results.md"]


# The pipeline features the demo added, on a tiny model -------------------------------------------------

def _tiny(root: Path) -> dict:
    tok = helpers.byte_level_bpe(helpers.EN_TEXT * 3, vocab_size=320)
    model = helpers.tiny_llama(len(tok), bos_id=tok.bos_token_id, eos_id=tok.eos_token_id)
    helpers.save_model_folder(model, tok, root / "model")
    helpers.write_lines(root / "es.txt", helpers.ES_TEXT * 5)
    helpers.write_lines(root / "select.txt", helpers.ES_TEXT[:4])
    helpers.write_lines(root / "eval.txt", helpers.ES_TEXT[4:8])
    return {"name": "tiny-candidates",
            "inputs": {"model": str(root / "model"), "target_text": str(root / "es.txt"),
                       "select_text": str(root / "select.txt"), "eval_text": str(root / "eval.txt")},
            "stages": {"tokenizer": {"vocab_size": 300, "show_progress": False},
                       "transfer": {"candidates": ["random", {"method": "mean"}, "fvt"]},
                       "lapt": {"mode": "embeddings", "seq_len": 32, "batch_size": 2, "max_steps": 2,
                                "save_steps": 2},
                       "eval": {"baseline": "$model", "intermediate": "@transfer", "baseline_name": "original",
                                "intermediate_name": "init", "name": "adapted"}}}


def test_transfer_candidates_keep_the_lowest_bpb_and_eval_labels(tmp_path):
    recipe = _tiny(tmp_path)
    result = run_recipe(recipe, tmp_path / "out", progress=None)
    summary = result["stages"]["transfer"]["summary"]
    scores = {m: c["bits_per_byte"] for m, c in summary["candidates"].items()}
    assert list(scores) == ["random", "mean", "fvt"] and all(math.isfinite(v) for v in scores.values())
    assert summary["method"] == min(scores, key=scores.get)
    assert sorted(p.name for p in (tmp_path / "out" / "transfer").iterdir()) == [".done.json", ".step.transfer.json",
                                                                                "model"]  # only the kept model
    assert (tmp_path / "out" / "transfer" / "model" / "model.safetensors").is_file()
    # The kept model is the candidate that was scored: its bpb on the select text is the recorded one.
    from langshift.evaluate.bpb import bits_per_byte
    from langshift.models import load_model, load_tokenizer

    folder = str(tmp_path / "out" / "transfer" / "model")
    again = bits_per_byte(load_model(folder), load_tokenizer(folder), helpers.ES_TEXT[:4], progress=False)
    assert again["bits_per_byte"] == pytest.approx(scores[summary["method"]], rel=1e-5)
    evals = result["stages"]["eval"]["summary"]["results"]
    assert list(evals) == ["original", "init", "adapted"]
    assert evals["init"]["bpb"]["bits_per_byte"] == pytest.approx(
        bits_per_byte(load_model(folder), load_tokenizer(folder), helpers.ES_TEXT[4:8],
                      progress=False)["bits_per_byte"], rel=1e-5)
    files = sorted(p.name for p in (tmp_path / "out" / "eval" / "results").glob("*.json"))
    assert files == ["bpb.adapted.json", "bpb.init.json", "bpb.original.json", "models.json"]
    order = json.loads((tmp_path / "out" / "eval" / "results" / "models.json").read_text())
    assert order == {"models": ["original", "init", "adapted"]}  # the report's row order: before → after
    # A rerun skips everything.
    again_run = run_recipe(recipe, tmp_path / "out", progress=None)
    assert {s["status"] for s in again_run["stages"].values()} == {"skipped"}


@pytest.mark.parametrize("change, match", [
    ({"candidates": ["mean", "nope"]}, r"--candidates.*nope"),
    ({"candidates": ["mean", "mean"]}, "each method once"),
    ({"candidates": [{"method": "mean", "aux_fasttext": "/some/path"}]}, "only be switched off"),
    ({"candidates": [{"method": "mean", "out": "x"}]}, "not a field a candidate can change"),
    ({"candidates": [{"k": 3}]}, "mapping with a 'method'"),
])
def test_transfer_candidate_errors(change, match):
    from langshift.transfer.config import TransferConfig

    paths = {"model": "m", "tokenizer": "t", "out": "o"}
    with pytest.raises(LangshiftError, match=match):  # ConfigError, or the registry's miss for a name
        TransferConfig(select_text="s.txt", **paths, **change)
    with pytest.raises(ConfigError, match="--select-text"):
        TransferConfig(candidates=["mean"], **paths)


def test_eval_names_errors(tmp_path):
    from langshift.evaluate.config import EvalConfig

    with pytest.raises(ConfigError, match="unknown key"):
        EvalConfig.from_dict({"names": {"model": "x"}})
    with pytest.raises(ConfigError, match="without '/'"):
        EvalConfig(name="a/b")
    recipe = _tiny(tmp_path)
    recipe["stages"] = {"eval": {"baseline": "$model", "baseline_name": "same", "name": "same"}}
    with pytest.raises(ConfigError, match="share a label"):
        run_recipe(recipe, tmp_path / "out", progress=None)
