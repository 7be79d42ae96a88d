from __future__ import annotations

import json

import pytest
import torch

from helpers import save_model_folder, tiny_llama
from langshift.cli import main
from langshift.errors import ConfigError, LangshiftError
from langshift.evaluate.mc import (
    MCItem,
    build_requests,
    evaluate_mc,
    load_items,
    mean_and_stderr,
    run_lm_eval,
)
from langshift.evaluate.templates import get_template, languages

REQUIRED = ["en", "es", "de", "fr", "pt", "it", "sw", "ko", "zh", "vi", "bn", "ar", "hi", "ja", "ru"]


@pytest.fixture(scope="module")
def tiny(source_bpe):
    model = tiny_llama(len(source_bpe), bos_id=source_bpe.bos_token_id, eos_id=source_bpe.eos_token_id, seed=5)
    return model.double(), source_bpe


def _hand_logprob(model, tok, context: str, continuation: str) -> float:
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
    assert whole[:len(ctx)] == ctx
    ids = [tok.bos_token_id] + whole
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
    first = 1 + len(ctx)
    return sum(float(logp[t - 1, ids[t]]) for t in range(first, len(ids)))


def test_scores_equal_hand_computation(tiny):
    model, tok = tiny
    items = [MCItem("Who gave the book?", ["The old man", "A dog", "The king of the city"], 2, language="en"),
             MCItem("What came into the world?", ["light", "water"], 0, passage="In the beginning.", language="en")]
    res = evaluate_mc(model, tok, items, batch_size=3, progress=False)
    for item, pred in zip(items, res["predictions"], strict=True):
        hand = [_hand_logprob(model, tok, c, x) for c, x in build_requests(item, "en")]
        assert pred["logprobs"] == pytest.approx(hand, abs=1e-9)
        norm = [lp / len(x.encode()) for lp, (_, x) in zip(hand, build_requests(item, "en"), strict=True)]
        assert pred["pred"] == max(range(len(hand)), key=hand.__getitem__)
        assert pred["pred_norm"] == max(range(len(norm)), key=norm.__getitem__)
    expected = [float(p["pred"] == it.answer) for p, it in zip(res["predictions"], items, strict=True)]
    assert res["acc"] == sum(expected) / 2
    assert res["acc_stderr"] == pytest.approx(mean_and_stderr(expected)[1], nan_ok=True)
    # the batch size does not change the scores
    one = evaluate_mc(model, tok, items, batch_size=1, progress=False)
    flat = lambda r: [lp for p in r["predictions"] for lp in p["logprobs"]]  # noqa: E731
    assert flat(one) == pytest.approx(flat(res), abs=1e-9)


def test_kept_logits_equal_full_logits_and_bfloat16_is_close(tiny):
    from langshift.evaluate.bpb import score_windows
    from langshift.evaluate.mc import encode_request, score_continuations

    model, tok = tiny
    items = [MCItem("Who gave the book to the old man?", ["The old man", "A dog", "The king of the city"], 2),
             MCItem("What came?", ["light", "water and more water"], 0, passage="In the beginning.")]
    windows = [encode_request(tok, c, x, 1024) for it in items for c, x in build_requests(it, "en")]
    full = score_windows(model, windows, batch_size=4, pad_id=0, progress=False)
    kept = score_continuations(model, windows, batch_size=4, progress=False)
    assert kept == pytest.approx(full, abs=1e-9)
    exact = score_continuations(model.float(), windows, batch_size=4, progress=False)
    fast = score_continuations(model, windows, batch_size=4, precision="bfloat16", progress=False)
    model.double()
    assert fast != exact and fast == pytest.approx(exact, rel=0.02)
    with pytest.raises(ConfigError, match="precision"):
        score_continuations(model, windows, batch_size=4, precision="int4", progress=False)


def test_letters_format_scores_labels(tiny):
    model, tok = tiny
    item = MCItem("Q?", ["x", "y", "z"], 1, passage="P.", language="de")
    reqs = build_requests(item, "en", fmt="letters")
    assert [x for _, x in reqs] == [" A", " B", " C"]
    assert reqs[0][0] == "Dokument: P.\nFrage: Q?\nA. x\nB. y\nC. z\nAntwort:"
    res = evaluate_mc(model, tok, [item], fmt="letters", progress=False)
    assert res["n"] == 1 and res["format"] == "letters"


def test_stderr():
    mean, se = mean_and_stderr([1.0, 0.0, 1.0, 1.0])
    assert mean == 0.75 and se == pytest.approx((0.25 / 4) ** 0.5)


@pytest.mark.parametrize("lang", REQUIRED)
def test_every_required_language_renders(lang):
    tpl = get_template(lang)
    ctx = tpl.render_ll_context("q", "p", ["a", "b", "c", "d"])
    assert ctx.startswith(f"{tpl.passage}: p\n{tpl.question}: q\n") and ctx.endswith(f"\n{tpl.answer}:")
    instruction = tpl.render_instruction(4)
    assert f"{tpl.answer}" in instruction and "A, B, C, D" in instruction and "{" not in instruction
    assert set(REQUIRED) <= set(languages())


def test_korean_uses_native_option_labels():
    assert "가) a" in get_template("ko").render_question("q", choices=["a", "b"])


def test_language_without_template():
    with pytest.raises(ConfigError, match="no template.*shipped: .*es.*--fallback-english"):
        get_template("xh")
    assert get_template("xh", fallback_english=True).lang == "en"
    item = MCItem("q", ["a", "b"], 0, language="xh")
    with pytest.raises(ConfigError, match="language='xh'"):
        build_requests(item, "en")
    assert build_requests(item, "en", fallback_english=True)[0][0].endswith("Answer:")


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_task_file_errors_name_line_and_field(tmp_path):
    ok = {"question": "q", "choices": ["a", "b"], "answer": 1}
    with pytest.raises(LangshiftError, match=r"t.jsonl:2: missing field 'choices'"):
        load_items(_write(tmp_path / "t.jsonl", [ok, {"question": "q", "answer": 0}]))
    with pytest.raises(LangshiftError, match=r":1: field 'answer'=2 is out of range for 2 choices"):
        load_items(_write(tmp_path / "t.jsonl", [{**ok, "answer": 2}]))
    with pytest.raises(LangshiftError, match=r":1: field 'answer' must be a 0-based integer"):
        load_items(_write(tmp_path / "t.jsonl", [{**ok, "answer": "B"}]))
    with pytest.raises(LangshiftError, match=r"line 3 is not JSON"):
        load_items(_write(tmp_path / "t.jsonl", [ok, "", "{oops"]))
    with pytest.raises(LangshiftError, match=r"field 'choices' must be a list of at least 2"):
        load_items(_write(tmp_path / "t.jsonl", [{**ok, "choices": ["only"]}]))
    with pytest.raises(ConfigError, match="--tasks"):
        load_items(tmp_path / "missing.jsonl")
    assert len(load_items(_write(tmp_path / "t.jsonl", [ok, "", ok]))) == 2


def test_cli_mc_and_save(tiny, tmp_path, capsys):
    model, tok = tiny
    folder = save_model_folder(model.float(), tok, tmp_path / "m")
    model.double()
    tasks = _write(tmp_path / "tasks.jsonl", [{"question": "Who?", "choices": ["a man", "a dog"], "answer": 0,
                                               "language": "es"}] * 3)
    assert main(["eval", "mc", "--model", str(folder), "--tasks", str(tasks), "--save", str(tmp_path / "run")]) == 0
    out = json.loads(capsys.readouterr().out)["results"][str(folder)]["mc"]
    assert out["n"] == 3 and out["acc"] in (0.0, 1.0) and out["by_language"]["es"]["n"] == 3
    assert (tmp_path / "run" / "mc.m.tasks.json").is_file()


LMEVAL_YAML = """task: langshift_tiny_local
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


@pytest.mark.filterwarnings("ignore")
def test_lm_eval_adapter_on_local_task(tiny, tmp_path, monkeypatch):
    pytest.importorskip("lm_eval")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "ds_cache"))
    model, tok = tiny
    data = _write(tmp_path / "data.jsonl", [{"question": "The old man gave", "choices": [" the book", " water"],
                                             "answer": 0}] * 4)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "tiny.yaml").write_text(LMEVAL_YAML.format(data=data))
    res = run_lm_eval(model.float(), tok, ["langshift_tiny_local"], include_path=str(tmp_path / "tasks"),
                      batch_size=2)
    model.double()
    acc = res["results"]["langshift_tiny_local"]["acc,none"]
    assert acc in (0.0, 1.0)  # four copies of one item: all right or all wrong
    assert res["n_samples"]["langshift_tiny_local"]["effective"] == 4
    with pytest.raises(ConfigError, match="not a JSONL file nor a known lm-eval task"):
        run_lm_eval(model, tok, ["no_such_task_xyz"], include_path=str(tmp_path / "tasks"))
