from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import EN_TEXT, ES_TEXT, tiny_llama
from langshift.cli import main
from langshift.errors import ConfigError, LangshiftError
from langshift.evaluate.builders import build_next_verse, build_parallel, build_translation
from langshift.evaluate.mc import parse_item
from langshift.evaluate.report import build_report
from langshift.evaluate.results import load_results, save_result

FAKE_BIBLE = [(f"Book {c}:{v}", f"English verse number {c}-{v} with words " * (1 + v % 3),
               f"Versículo español número {c}-{v} con palabras " * (1 + (v + c) % 3)) for c in range(1, 4)
              for v in range(1, 15)]


def test_builders_are_seeded_valid_and_synthetic():
    a = build_translation(10, seed=4, pairs=FAKE_BIBLE)
    assert a == build_translation(10, seed=4, pairs=FAKE_BIBLE) != build_translation(10, seed=5, pairs=FAKE_BIBLE)
    by_ref = {r: (e, x) for r, e, x in FAKE_BIBLE}
    for item in a:
        parse_item(item, "x")  # a valid MC item
        assert len(set(item["choices"])) == 4 and item["synthetic"] and item["seed"] == 4
        assert item["choices"][item["answer"]] == by_ref[item["id"]][1] and item["question"] == by_ref[item["id"]][0]
    order = [r for r, _, _ in FAKE_BIBLE]
    for item in build_next_verse(10, seed=1, pairs=FAKE_BIBLE):
        parse_item(item, "x")
        i = order.index(item["id"])
        assert item["question"] == FAKE_BIBLE[i][2] and item["choices"][item["answer"]] == FAKE_BIBLE[i + 1][2]
        assert FAKE_BIBLE[i][0].split(":")[0] == FAKE_BIBLE[i + 1][0].split(":")[0]  # same chapter
    par = build_parallel(5, seed=0, pairs=FAKE_BIBLE)
    assert all(by_ref[p["id"]] == (p["en"], p["xx"]) for p in par)


def test_build_cli_errors(tmp_path, capsys):
    assert main(["eval", "build", "--task", "translaton", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "did you mean 'translation'" in capsys.readouterr().err.lower()
    assert main(["eval", "build", "--task", "translation", "--n", "0", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert not (tmp_path / "x.jsonl").exists()


def _fake_run(tmp_path, name, bpb, mexa_scores):
    run = tmp_path / name
    save_result(run, "bpb", {"bits_per_byte": bpb, "tokens": 10, "bytes": 40}, "model-x", {"text": "/d/es.txt"})
    save_result(run, "mc", {"n": 20, "acc": 0.5, "acc_stderr": 0.11, "acc_norm": 0.55, "acc_norm_stderr": 0.11},
                "model-x", {"tasks": "/d/translation.jsonl"}, tag="translation")
    save_result(run, "mexa", {"layers": [1, 2, 3], "scores": mexa_scores, "mean": float(np.mean(mexa_scores)),
                              "max": max(mexa_scores), "n_pairs": 9}, "model-x")
    save_result(run, "fidelity", {"lpr": 0.8, "wpr": 0.5, "lcpr": 0.615, "line_failures": [
        {"response": "The house <b>is</b> big", "lines": []}], "word_failures": []}, "model-x", {"lang": "es"})
    save_result(run, "judge", {"win_rate_a": 0.6, "stderr": 0.05, "n": 10}, "model-x", {"against": "sft"})
    save_result(run, "mc", {"results": {"belebele_spa": {"acc,none": 0.3, "acc_stderr,none": 0.02}}}, "model-x",
                {"tasks": ["belebele_spa"]}, tag="lm_eval")
    (run / "ckpt").mkdir()
    (run / "ckpt" / "trainer_state.json").write_text(json.dumps({"log_history": [
        {"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.5}, {"step": 2, "eval_loss": 2.7}]}))
    (run / "notes.json").write_text('{"unrelated": 1}')
    return run


def test_report(tmp_path, capsys):
    a = _fake_run(tmp_path, "baseline", 2.7, [0.1, 0.2, 0.15])
    b = _fake_run(tmp_path, "migrate", 1.9, [0.3, 0.5, 0.4])
    assert len(load_results(a)) == 6  # notes.json is not a result
    assert main(["report", str(a), str(b), "--out", str(tmp_path / "rep")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"index.html", "results.md", "mexa.png", "training_loss.png"} <= set(out["files"])
    md = (tmp_path / "rep" / "results.md").read_text()
    assert "| baseline/model-x | 2.7 | 0.3 ± 0.02 | 0.5 ± 0.11 |" in md and "| migrate/model-x | 1.9 |" in md
    assert md.index("bits/byte") < md.index("MEXA mean") < md.index("LPR") < md.index("win rate")
    assert "belebele_spa acc" in md and "win rate vs sft" in md and "LCPR [es]" not in md
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "mexa.png" in page and "&lt;b&gt;is&lt;/b&gt;" in page  # outputs are escaped
    assert (tmp_path / "rep" / "mexa.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["report", str(a), "--out", str(tmp_path / "rep")]) == 2  # exists: needs --overwrite
    assert "--overwrite" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="holds no result files"):
        build_report([empty], tmp_path / "r2")
    with pytest.raises(LangshiftError, match="no such folder"):
        build_report([tmp_path / "missing"], tmp_path / "r3")


def test_report_keeps_the_recorded_model_order_and_plots_given_training_logs(tmp_path):
    from langshift.evaluate.results import save_model_order

    run = tmp_path / "run"
    for label, bpb in (("original", 2.7), ("transferred", 2.3), ("aligned", 2.2)):
        save_result(run, "bpb", {"bits_per_byte": bpb, "tokens": 10, "bytes": 40}, label, {"text": "t"})
    res = build_report([run], tmp_path / "r0")
    assert res["models"] == ["aligned", "original", "transferred"]  # no recorded order: by file name
    save_model_order(run, ["original", "transferred", "aligned"])
    trained = tmp_path / "lapt-model"
    trained.mkdir()
    (trained / "train_log.jsonl").write_text('{"step": 1, "loss": 4.0}\n{"step": 2, "loss": 3.5}\n')
    res = build_report([run], tmp_path / "r1", training={"lapt": trained})
    assert res["models"] == ["original", "transferred", "aligned"]
    assert "training_loss.png" in res["files"]
    from langshift.evaluate.report import training_curves

    assert training_curves(trained, label="lapt") == {"lapt": ([1, 2], [4.0, 3.5])}
    # the init methods a pipeline compared, best first, the kept one marked
    (trained / "langshift_candidates.json").write_text(json.dumps({
        "method": "salt", "selected_by": "lowest bits per byte on held.txt",
        "candidates": {"focus": {"bits_per_byte": 2.9}, "salt": {"bits_per_byte": 2.8}, "mean": {"bits_per_byte": 3.3}}}))
    build_report([run], tmp_path / "r2", candidates=trained / "langshift_candidates.json")
    page = (tmp_path / "r2" / "index.html").read_text()
    assert page.index("salt (kept)") < page.index(">focus<") < page.index(">mean<")
    assert "Init methods compared" not in (tmp_path / "r1" / "index.html").read_text()


def test_hidden_view(source_bpe, tmp_path):
    from langshift.evaluate.hidden import middle_layer_points, plot_points

    model = tiny_llama(len(source_bpe), bos_id=source_bpe.bos_token_id, eos_id=source_bpe.eos_token_id, layers=4)
    pairs = list(zip(EN_TEXT, ES_TEXT, strict=False))
    view = middle_layer_points(model, source_bpe, pairs, progress=False)
    assert view["layer"] == 2 and view["en"].shape == (8, 2) and view["xx"].shape == (8, 2)
    tsne = middle_layer_points(model, source_bpe, pairs, layer=4, method="tsne", progress=False)
    plot_points({"a": view, "b": tsne}, tmp_path / "h.png", "es")
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ConfigError, match="--layer"):
        middle_layer_points(model, source_bpe, pairs, layer=9)


def test_report_gives_the_share_of_looping_replies_with_its_interval():
    from langshift.evaluate.intervals import wilson
    from langshift.evaluate.report import metrics

    res = {"lpr": 0.75, "lpr_low": 0.5, "lpr_high": 0.9, "wpr": 1.0, "lcpr": 0.857, "n": 12, "looping_responses": 3}
    got = metrics({"kind": "fidelity", "result": res, "config": {"prompts": "p/dev.es.txt"}})
    assert got["looping [dev.es]"] == (0.25, wilson(3, 12))
    drawn = {**res, "looping_low": 0.1, "looping_high": 0.45}  # several draws: the result's own interval over prompts
    assert metrics({"kind": "fidelity", "result": drawn, "config": {"prompts": "p/dev.es.txt"}})[
        "looping [dev.es]"] == (0.25, (0.1, 0.45))
    del res["looping_responses"]  # results saved before the count existed: no column, no made-up zero
    assert "looping [dev.es]" not in metrics({"kind": "fidelity", "result": res, "config": {"prompts": "p/dev.es.txt"}})
