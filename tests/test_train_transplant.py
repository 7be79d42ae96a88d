"""Transplant: B's body kept bit for bit, A's embeddings, tokenizer and ids; mismatches refused."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import helpers
from langshift.errors import LangshiftError
from langshift.train.transplant import transplant


def _folders(tmp_path, source_bpe, target_bpe, tied_a, tied_b, hidden_a=16, layers_a=2):
    a = helpers.tiny_llama(len(target_bpe), tied=tied_a, hidden=hidden_a, layers=layers_a, seed=3,
                           eos_id=target_bpe.eos_token_id)
    b = helpers.tiny_llama(len(source_bpe), tied=tied_b, seed=4, eos_id=source_bpe.eos_token_id)
    tok_b = copy.deepcopy(source_bpe)
    tok_b.chat_template = helpers.CHAT_TEMPLATE + "{# body template #}"
    tok_a = helpers.byte_level_bpe(helpers.ES_TEXT * 3, vocab_size=330)
    tok_a.chat_template = None
    return (helpers.save_model_folder(a, tok_a, tmp_path / "a"), helpers.save_model_folder(b, tok_b, tmp_path / "b"),
            a, b)


@pytest.mark.parametrize("tied_a, tied_b", [(True, True), (False, True), (True, False), (False, False)])
def test_transplant_keeps_body_and_embeddings(tmp_path, source_bpe, target_bpe, tied_a, tied_b):
    pa, pb, a, b = _folders(tmp_path, source_bpe, target_bpe, tied_a, tied_b)
    out = transplant(str(pa), str(pb), str(tmp_path / "c"))
    c = AutoModelForCausalLM.from_pretrained(out)
    sb, sc = b.state_dict(), c.state_dict()
    body = [k for k in sb if "embed_tokens" not in k and "lm_head" not in k]
    assert body and all(torch.equal(sb[k], sc[k]) for k in body)
    assert torch.equal(c.get_input_embeddings().weight, a.get_input_embeddings().weight)
    assert torch.equal(c.get_output_embeddings().weight, a.get_output_embeddings().weight)
    tied_c = c.get_output_embeddings().weight.data_ptr() == c.get_input_embeddings().weight.data_ptr()
    assert tied_c == tied_a
    tok_c = AutoTokenizer.from_pretrained(out)
    assert tok_c.get_vocab() == AutoTokenizer.from_pretrained(pa).get_vocab()
    assert tok_c.chat_template.endswith("{# body template #}")
    assert c.generation_config.eos_token_id == tok_c.eos_token_id
    assert json.loads((out / "transplant.json").read_text())["tied_embeddings"] == tied_a
    # the result runs
    ids = tok_c("El rey habló.", return_tensors="pt")["input_ids"]
    assert c(ids).logits.shape[-1] == len(tok_c)


@pytest.mark.parametrize("kw, field", [({"hidden_a": 32}, "hidden_size: 32"), ({"layers_a": 3}, "num_hidden_layers: 3")])
def test_incompatible_pairs_are_refused(tmp_path, source_bpe, target_bpe, kw, field):
    pa, pb, _, _ = _folders(tmp_path, source_bpe, target_bpe, True, True, **kw)
    with pytest.raises(LangshiftError, match=field + r" in --embeddings-from .* vs (16|2) in --body-from"):
        transplant(str(pa), str(pb), str(tmp_path / "c"))
    assert not (tmp_path / "c").exists()


def test_other_architecture_refused(tmp_path, source_bpe, target_bpe):
    from transformers import MistralConfig, MistralForCausalLM

    pa, pb, _, _ = _folders(tmp_path, source_bpe, target_bpe, True, True)
    cfg = MistralConfig(vocab_size=len(target_bpe), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                        num_attention_heads=2, num_key_value_heads=1)
    helpers.save_model_folder(MistralForCausalLM(cfg), target_bpe, tmp_path / "m")
    with pytest.raises(LangshiftError, match=r"model_type: 'mistral' in --embeddings-from .* vs 'llama'"):
        transplant(str(tmp_path / "m"), str(pb), str(tmp_path / "c"))


def test_cli_and_pipeline_write_the_same_transplant(tmp_path, source_bpe, target_bpe, capsys):
    """`langshift transplant` and a recipe's transplant stage call run_transplant with one TransplantConfig."""
    from langshift.cli import main
    from langshift.pipeline import run_recipe

    pa, pb, _, _ = _folders(tmp_path, source_bpe, target_bpe, False, True)
    assert main(["transplant", "--embeddings-from", str(pa), "--body-from", str(pb), "--out",
                 str(tmp_path / "cli")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["out"] == str(tmp_path / "cli") and printed["tied_embeddings"] is False
    recipe = {"name": "transplant-only", "inputs": {"instruct_model": str(pb)},
              "stages": {"transplant": {"embeddings_from": str(pa)}}}
    result = run_recipe(recipe, tmp_path / "run", progress=None)
    summary = result["stages"]["transplant"]["summary"]
    assert {k: v for k, v in summary.items() if k != "out"} == {k: v for k, v in printed.items() if k != "out"}
    cli, stage = tmp_path / "cli", tmp_path / "run" / "transplant" / "model"
    names = sorted(p.name for p in cli.iterdir())
    assert names == sorted(p.name for p in stage.iterdir() if not p.name.startswith("."))
    assert all((cli / n).read_bytes() == (stage / n).read_bytes() for n in names)


def test_transplant_out_may_not_be_an_input(tmp_path, source_bpe, target_bpe):
    from langshift.errors import ConfigError
    from langshift.train.transplant import TransplantConfig, run_transplant

    pa, pb, _, _ = _folders(tmp_path, source_bpe, target_bpe, True, True)
    with pytest.raises(ConfigError, match="--out"):
        run_transplant(TransplantConfig(embeddings_from=str(pa), body_from=str(pb), out=str(pb), overwrite=True))
