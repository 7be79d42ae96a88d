"""docs/architecture.md's worked examples run as written, and do what the text says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import helpers

DOC = Path(__file__).parent.parent / "docs" / "architecture.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture
def registered():
    from langshift.transfer.methods.base import INIT_METHODS
    from langshift.translate import TRANSLATORS

    yield
    INIT_METHODS._items.pop("first-piece", None)
    TRANSLATORS._items.pop("glossary", None)


def test_examples_are_there():
    blocks = _blocks()
    assert len(blocks) == 4 and "first-piece" in blocks[0] and "glossary" in blocks[1] and "lengths" in blocks[2]
    assert "tokens_per_word" in blocks[3]


def test_init_method_example_transfers(registered, source_bpe, target_bpe):
    from langshift.transfer.apply import transfer
    from langshift.transfer.methods.base import INIT_METHODS

    exec(compile(_blocks()[0], str(DOC), "exec"), {})
    assert "first-piece" in INIT_METHODS.names()
    model = helpers.tiny_llama(len(source_bpe), bos_id=source_bpe.bos_token_id, eos_id=source_bpe.eos_token_id)
    before = model.get_input_embeddings().weight.detach().clone()
    model, prov = transfer(model, source_bpe, target_bpe, "first-piece")
    after = model.get_input_embeddings().weight.detach()
    made = [t for t in prov.tokens if t["how"] == "first-piece"]
    assert len(made) > 20
    for t in made:  # each new row is its first source piece's row, exactly
        assert torch.equal(after[t["id"]], before[t["sources"][0]["id"]])


def test_translator_example_runs(registered):
    exec(compile(_blocks()[1], str(DOC), "exec"), {})  # its own assert checks the answers
    from langshift.translate import get_translator

    assert get_translator("glossary", "en", "es", entries={"a": "b"}).translate_sentences(["x"]) == [None]


@pytest.fixture
def lengths_stage():
    from langshift.pipeline.stages import STAGES

    yield
    STAGES._items.pop("lengths", None)


def test_stage_example_runs_the_same_from_cli_and_recipe(lengths_stage, tmp_path):
    import argparse
    import json

    from langshift.errors import ConfigError
    from langshift.pipeline import run_recipe
    from langshift.pipeline.stages import data_flow

    scope: dict = {}
    exec(compile(_blocks()[2], str(DOC), "exec", dont_inherit=True), scope)  # as in a module of its own
    assert data_flow().index("lengths") == data_flow().index("syncs") + 1
    text = tmp_path / "t.txt"
    text.write_text("uno dos\ntres\n", encoding="utf-8")
    # the command: flags from the config's fields
    parser = argparse.ArgumentParser()
    scope["LENGTHS"].add_to(parser.add_subparsers())
    args = parser.parse_args(["lengths", "--text", str(text), "--out", str(tmp_path / "cli.json")])
    assert args.func(args) == 0
    # the recipe: the slot falls back to the recipe's target_text
    run_recipe({"name": "lengths", "inputs": {"target_text": str(text)}, "stages": {"lengths": {}}}, tmp_path / "run")
    cli = json.loads((tmp_path / "cli.json").read_text(encoding="utf-8"))
    piped = json.loads((tmp_path / "run" / "lengths" / "lengths.json").read_text(encoding="utf-8"))
    assert cli.pop("out") != piped.pop("out") and cli == piped == {"documents": 2, "mean_bytes": 5.5}
    with pytest.raises(ConfigError, match="--out"):  # an out that is the input is refused before anything runs
        args = parser.parse_args(["lengths", "--text", str(text), "--out", str(text), "--overwrite"])
        args.func(args)


@pytest.fixture
def fertility_task():
    from langshift.evaluate.tasks import EVAL_TASKS

    yield
    EVAL_TASKS._items.pop("tokens_per_word", None)


def test_eval_task_example_runs_in_the_eval_front_door(fertility_task, source_bpe, tmp_path):
    import json

    from langshift.evaluate.config import EvalConfig
    from langshift.evaluate.run import run_eval
    from langshift.models import load_tokenizer

    exec(compile(_blocks()[3], str(DOC), "exec", dont_inherit=True), {})
    model = helpers.tiny_llama(len(source_bpe), bos_id=source_bpe.bos_token_id, eos_id=source_bpe.eos_token_id)
    tiny_model_dir = helpers.save_model_folder(model, source_bpe, tmp_path / "model")
    text = tmp_path / "t.txt"
    text.write_text("the cat sat\non the mat today\n", encoding="utf-8")
    res = run_eval(EvalConfig(model=str(tiny_model_dir), name="model", bpb_text=str(text), tasks=["tokens_per_word"],
                              out=str(tmp_path / "runs")))
    tok = load_tokenizer(str(tiny_model_dir))
    want = sum(len(tok(s, add_special_tokens=False)["input_ids"]) for s in ("the cat sat", "on the mat today")) / 7
    assert list(res.results["model"]) == ["tokens_per_word"]  # named: it runs, and bpb (not named) does not
    assert res.results["model"]["tokens_per_word"]["tokens_per_word"] == pytest.approx(want)
    saved = json.loads((tmp_path / "runs" / "fertility.model.json").read_text(encoding="utf-8"))
    assert saved["result"]["n"] == 2
