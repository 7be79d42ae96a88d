"""The evaluation's one front door: `langshift eval …` and a recipe's eval stage call ``run_eval`` with the same
``EvalConfig``; any registered task runs through the stage, the generative ones included."""

from __future__ import annotations

import json

import pytest

from helpers import EN_TEXT, ES_TEXT, save_model_folder, tiny_llama, write_lines
from langshift.cli import main
from langshift.errors import ConfigError, LangshiftError
from langshift.evaluate.config import EvalConfig
from langshift.evaluate.run import run_eval
from langshift.evaluate.tasks import EVAL_TASKS
from langshift.pipeline import run_recipe


@pytest.fixture(scope="module")
def folder(source_bpe, tmp_path_factory):
    model = tiny_llama(len(source_bpe), bos_id=source_bpe.bos_token_id, eos_id=source_bpe.eos_token_id, seed=3)
    return save_model_folder(model, source_bpe, tmp_path_factory.mktemp("m") / "model")


def _saved(path) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))
    data.pop("created")
    return data


def test_registry_holds_every_task():
    assert {"bpb", "mc", "gen_mc", "lm_eval", "mexa", "fidelity", "fidelity_source", "judge"} <= set(
        EVAL_TASKS.names())


def test_cli_and_recipe_give_the_same_bpb(folder, tmp_path, capsys):
    text = write_lines(tmp_path / "t.txt", EN_TEXT + ES_TEXT)
    assert main(["eval", "bpb", "--model", str(folder), "--text", str(text), "--limit", "5", "--name", "model",
                 "--save", str(tmp_path / "run")]) == 0
    cli = json.loads(capsys.readouterr().out)["results"]["model"]["bpb"]
    recipe = {"name": "eval-only", "inputs": {"model": str(folder), "eval_text": str(text)},
              "stages": {"eval": {"limit": 5}}}
    result = run_recipe(recipe, tmp_path / "out", progress=None)
    stage = result["stages"]["eval"]["summary"]["results"]["model"]["bpb"]
    assert stage == cli and cli["documents"] == 5
    assert _saved(tmp_path / "run" / "bpb.model.json") == _saved(tmp_path / "out" / "eval" / "results" /
                                                                   "bpb.model.json")


def test_recipe_eval_runs_a_generative_task_through_the_registry(folder, tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"question": q, "choices": ["man", "dog", "king", "water"], "answer": 0})
                             + "\n" for q in ("Who gave the book?", "Who came?")))
    recipe = {"name": "gen", "inputs": {"model": str(folder)},
              "stages": {"eval": {"gen_mc_tasks": str(items), "target_lang": "en", "max_new_tokens": 4,
                                  "regenerations": 1}}}
    result = run_recipe(recipe, tmp_path / "out", progress=None)
    res = result["stages"]["eval"]["summary"]["results"]["model"]["gen_mc"]
    assert res["n"] == 2 and 0 <= res["acc"] <= 1 and "predictions" not in res
    saved = json.loads((tmp_path / "out" / "eval" / "results" / "gen_mc.model.json").read_text())
    assert saved["kind"] == "gen_mc" and len(saved["result"]["predictions"]) == 2


def test_a_finished_result_is_kept_unless_overwrite(folder, tmp_path):
    text = write_lines(tmp_path / "t.txt", EN_TEXT[:3])
    cfg = EvalConfig(model=str(folder), bpb_text=str(text), out=str(tmp_path / "run"), name="m")
    first = run_eval(cfg)
    assert first.kept == [] and first.files == [str(tmp_path / "run" / "bpb.m.json")]
    again = run_eval(cfg)
    assert again.kept == first.files and again.results == first.results
    import dataclasses

    assert run_eval(dataclasses.replace(cfg, overwrite=True)).kept == []


def test_errors_name_the_field():
    with pytest.raises(ConfigError, match="no evaluation asked for"):
        run_eval(EvalConfig(model="m"))
    with pytest.raises(LangshiftError, match="no such eval task"):
        run_eval(EvalConfig(model="m", tasks=["bpbb"]))
    with pytest.raises(ConfigError, match="--batch-size"):
        EvalConfig(batch_size=0)
    with pytest.raises(ConfigError, match="--target-lang"):
        run_eval(EvalConfig(responses="r.jsonl"))


def test_same_language_system_prompt_follows_each_prompt_set(folder, tmp_path, monkeypatch):
    """`--system-prompt same-language`: App. F's sentence in Spanish before the Spanish prompts and in English
    before the English ones (one Spanish sentence before both would push the English replies to Spanish)."""
    from langshift.evaluate import generative
    from langshift.train.clo_data import SAME_LANGUAGE

    seen = {}

    def fake(model, tok, prompts, max_new_tokens, **kw):
        seen[prompts[0]] = kw["system"]
        return ["una respuesta corta en español aquí"] * len(prompts)

    monkeypatch.setattr(generative, "chat_generate", fake)
    es, en = write_lines(tmp_path / "es.txt", ["Hola, ¿qué tal?"]), write_lines(tmp_path / "en.txt", ["Hello there"])
    run_eval(EvalConfig(model=str(folder), fidelity_prompts=str(es), source_prompts=str(en), target_lang="es",
                        system_prompt="same-language", tasks=["fidelity", "fidelity_source"]))
    assert seen == {"Hola, ¿qué tal?": SAME_LANGUAGE["es"], "Hello there": SAME_LANGUAGE["en"]}
    with pytest.raises(ConfigError) as info:  # CLO puts one system prompt on all four rows: it needs a code
        from langshift.train.clo import CLOConfig
        CLOConfig(model="m", data="d", out="o", system_prompt="same-language")
    assert info.value.param == "--system-prompt" and "same-language:es" in str(info.value)


def test_several_draws_per_prompt_through_the_cli(folder, tmp_path, capsys):
    """`eval fidelity --sample --draws 3`: three sampled replies a prompt, draw 0 the same replies as one draw
    (same seeds); the saved replies re-score to the same LPR and interval; greedy with draws is refused."""
    from langshift.evaluate.report import per_item

    prompts = write_lines(tmp_path / "p.txt", ["Hola, ¿qué tal?", "Dime algo.", "¿Quién vino?", "Cuenta hasta tres."])
    base = ["eval", "fidelity", "--model", str(folder), "--prompts", str(prompts), "--target-lang", "es",
            "--max-new-tokens", "6", "--sample", "--name", "m"]
    assert main(base + ["--save", str(tmp_path / "one")]) == 0
    assert main(base + ["--draws", "3", "--save", str(tmp_path / "three")]) == 0
    capsys.readouterr()
    one = json.loads((tmp_path / "one" / "fidelity.m.json").read_text())
    three = json.loads((tmp_path / "three" / "fidelity.m.json").read_text())
    res = three["result"]
    assert (res["n"], res["prompts"], res["draws"]) == (12, 4, 3)
    assert [r["response"] for r in res["responses"][:4]] == [r["response"] for r in one["result"]["responses"]]
    assert [r["draw"] for r in res["responses"]] == [0] * 4 + [1] * 4 + [2] * 4
    assert len({r["response"] for r in res["responses"]}) > 4  # the other draws are other samples
    shares = per_item({**three, "run": "three"})[1]
    assert len(shares) == 4 and sum(shares) / 4 == pytest.approx(res["lpr"])
    saved = tmp_path / "replies.jsonl"
    saved.write_text("".join(json.dumps(r) + "\n" for r in res["responses"]))
    assert main(["eval", "fidelity", "--responses", str(saved), "--target-lang", "es"]) == 0
    again = json.loads(capsys.readouterr().out)["results"]
    again = next(iter(again.values()))["fidelity"]
    assert (again["lpr"], again["lpr_low"], again["lpr_high"], again["draws"]) == (
        res["lpr"], res["lpr_low"], res["lpr_high"], 3)
    with pytest.raises(ConfigError, match="--sample") as info:
        EvalConfig(draws=2)
    assert info.value.param == "--draws"
