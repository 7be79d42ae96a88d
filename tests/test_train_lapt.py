"""LAPT: what each mode trains, LoRA merge exactness, packing and mixing, resume."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM

import helpers
from langshift.errors import ConfigError
from langshift.train import lapt
from langshift.train.data import curriculum_indices, document_separator, mix_blocks, pack_ids, pack_texts
from langshift.train.runtime import read_log


@pytest.fixture()
def setup(tmp_path, source_bpe):
    text = helpers.write_lines(tmp_path / "es.txt", helpers.ES_TEXT * 4)
    return helpers.tiny_llama(len(source_bpe), seed=2), source_bpe, text


@pytest.fixture()
def batches(monkeypatch):
    """The blocks of every batch the Trainer collates, in order (the loader may fetch one batch ahead)."""
    seen, collate = [], lapt.collate_blocks

    def recording(examples):
        seen.append([tuple(ex["input_ids"]) for ex in examples])
        return collate(examples)

    monkeypatch.setattr(lapt, "collate_blocks", recording)
    return seen


def _cfg(tmp_path, text, **kw):
    base = dict(model="unused", text=str(text), out=str(tmp_path / "out"), seq_len=16, batch_size=4, grad_accum=1,
                max_steps=2, lr=5e-2, save_steps=1, lora_r=4, warmup=0.0)
    base.update(kw)
    return lapt.LAPTConfig(**base)


def _changed(before, model):
    after = model.state_dict()
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_pack_and_mix():
    blocks = pack_ids([[1, 2, 3], [4, 5], [6, 7, 8, 9]], seq_len=4, separator=0)
    assert blocks == [[1, 2, 3, 0], [4, 5, 0, 6], [7, 8, 9, 0]]
    mono, mixed = [[i] for i in range(30)], [[100 + i] for i in range(5)]
    out, stats = mix_blocks(mono, mixed, 0.25, seed=0)
    assert stats["code_switched_blocks"] == 5 and stats["monolingual_blocks"] == 15
    assert sum(b[0] >= 100 for b in out) == 5 and len(out) == 20
    with pytest.raises(ConfigError):
        mix_blocks(mono, mixed, 1.5, seed=0)


def test_curriculum_order_keeps_code_switched_blocks_early():
    order, stats = curriculum_indices(30, 12, early_blocks=8, ratio=0.5, seed=1)
    assert [src for src, _ in order[8:]] == [0] * 26 and sorted(src for src, _ in order[:8]) == [0] * 4 + [1] * 4
    assert sorted(i for src, i in order if src == 0) == list(range(30))  # every monolingual block, once
    assert stats["early_blocks"] == 8 and stats["early_code_switched_share"] == 0.5 and stats["blocks"] == 34
    # too few code-switched blocks: the early part shrinks and keeps its share
    order, stats = curriculum_indices(30, 3, early_blocks=8, ratio=0.5, seed=1)
    assert stats["early_blocks"] == 6 and {src for src, _ in order[6:]} == {0}
    assert curriculum_indices(30, 3, 8, 0.5, seed=1) == (order, stats)
    with pytest.raises(ConfigError, match="--mix-ratio"):
        curriculum_indices(30, 3, 8, 0.0, seed=1)


def test_mix_steps_trains_on_code_switched_blocks_first(setup, tmp_path, batches):
    model, tok, text = setup
    cs = helpers.write_lines(tmp_path / "cs.txt", helpers.EN_TEXT * 4)
    cs_blocks = {tuple(b) for b in pack_texts(tok, helpers.EN_TEXT * 4, 16)}
    cfg = _cfg(tmp_path, text, code_switched=str(cs), mix_steps=2, max_steps=5, save_steps=10, batch_size=2,
               grad_accum=2)
    out = lapt.train_lapt(cfg, model=model, tokenizer=tok)
    seen = batches[:10]  # 5 steps × 2 accumulated batches of 2 (the loader may fetch one batch ahead)
    assert len(seen) == 10 and len(cs_blocks) > 8
    assert [all(b in cs_blocks for b in batch) for batch in seen] == [True] * 4 + [False] * 6
    assert not any(b in cs_blocks for batch in seen[4:] for b in batch)
    data = json.loads((out / "train_summary.json").read_text())["data"]
    assert data["early_blocks"] == 8 and data["early_code_switched_share"] == 1.0


def test_mix_steps_resumes_where_the_curriculum_stopped(setup, tmp_path, batches):
    model, tok, text = setup
    cs = helpers.write_lines(tmp_path / "cs.txt", helpers.EN_TEXT * 4)
    kw = dict(code_switched=str(cs), mix_steps=2, batch_size=2, save_steps=2, mode="full")
    lapt.train_lapt(_cfg(tmp_path, text, max_steps=4, **kw, out=str(tmp_path / "whole")),
                    model=helpers.tiny_llama(len(tok), seed=2), tokenizer=tok)
    whole = batches[:4]
    batches.clear()
    lapt.train_lapt(_cfg(tmp_path, text, max_steps=2, keep_work=True, **kw), model=model, tokenizer=tok)
    shutil.rmtree(tmp_path / "out")  # died after checkpoint-2, before the final save
    batches.clear()
    out = lapt.train_lapt(_cfg(tmp_path, text, max_steps=4, **kw), model=helpers.tiny_llama(len(tok), seed=2),
                          tokenizer=tok)
    assert json.loads((out / "train_summary.json").read_text())["resumed_from_step"] == 2
    assert batches[:2] == whole[2:4]  # steps 3-4 read the blocks an uninterrupted run reads there


def test_packing_separates_documents_with_end_of_text_not_end_of_turn():
    # eos <|im_end|> ends chat turns: packing with it made a LAPT'd chat model answer with an empty turn
    chat = helpers.byte_level_bpe(helpers.ES_TEXT)
    eot, doc_end = chat.convert_tokens_to_ids("<|im_end|>"), chat.convert_tokens_to_ids("<|endoftext|>")
    assert chat.eos_token_id == eot and document_separator(chat) == doc_end
    blocks = pack_texts(chat, helpers.ES_TEXT, seq_len=8)
    flat = [t for b in blocks for t in b]
    assert doc_end in flat and eot not in flat
    # a base model (no end-of-turn in a template) keeps its EOS; so does one whose only end token is in it
    chat.chat_template = None
    assert document_separator(chat) == eot
    only = helpers.byte_level_bpe(helpers.ES_TEXT, specials=["<unk>", "<s>", "</s>"])
    only.chat_template = "{% for m in messages %}<s>{{ m['content'] }}</s>{% endfor %}"
    assert document_separator(only) == only.eos_token_id


def test_lora_merge_reproduces_adapter_logits(setup, tmp_path):
    model, tok, text = setup
    wrapped = lapt.lora_model(model, _cfg(tmp_path, text, embedding_rows="all"))
    opt = torch.optim.AdamW([p for p in wrapped.parameters() if p.requires_grad], lr=1e-2)
    ids = tok(helpers.ES_TEXT[:2], return_tensors="pt", padding=True)["input_ids"]
    wrapped.train()
    for _ in range(3):
        wrapped(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
    wrapped.eval()
    with torch.no_grad():
        adapter_logits = wrapped(input_ids=ids).logits
        merged = lapt.unwrap(wrapped)
        merged_logits = merged(input_ids=ids).logits
    assert not hasattr(merged, "peft_config")
    assert (adapter_logits - merged_logits).abs().max().item() < 1e-5


def test_lora_with_new_ids_trains_only_those_rows_and_attention(setup, tmp_path):
    model, tok, text = setup
    ids_file = tmp_path / "new.json"
    new_ids = sorted(set(tok(" ".join(helpers.ES_TEXT))["input_ids"]))[:6]
    ids_file.write_text(json.dumps({"new_ids": new_ids}))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = lapt.train_lapt(_cfg(tmp_path, text, embedding_rows=str(ids_file)), model=model, tokenizer=tok)
    saved = AutoModelForCausalLM.from_pretrained(out)
    changed = _changed(before, saved)
    assert all(any(p in k for p in ("q_proj", "k_proj", "v_proj", "o_proj", "embed_tokens", "lm_head")) for k in changed)
    emb = saved.get_input_embeddings().weight
    rows = (emb != before["model.embed_tokens.weight"]).any(1).nonzero().flatten().tolist()
    assert rows and set(rows) <= set(new_ids)
    log = read_log(out)
    assert [r["step"] for r in log if "loss" in r] == [1, 2]


def test_embeddings_mode_freezes_body(setup, tmp_path):
    model, tok, text = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lapt.train_lapt(_cfg(tmp_path, text, mode="embeddings"), model=model, tokenizer=tok)
    changed = _changed(before, model)
    assert changed and all("embed_tokens" in k or "lm_head" in k for k in changed)


def test_full_mode_trains_body(setup, tmp_path):
    model, tok, text = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lapt.train_lapt(_cfg(tmp_path, text, mode="full"), model=model, tokenizer=tok)
    assert any("mlp" in k for k in _changed(before, model))


def test_resume_after_interruption(setup, tmp_path, source_bpe):
    model, tok, text = setup
    cfg = _cfg(tmp_path, text, mode="full", max_steps=2, keep_work=True)
    lapt.train_lapt(cfg, model=model, tokenizer=tok)  # leaves <out>.work/checkpoint-2
    shutil.rmtree(tmp_path / "out")  # as if the run died after its checkpoint, before the final save
    model2 = helpers.tiny_llama(len(tok), seed=2)
    out = lapt.train_lapt(_cfg(tmp_path, text, mode="full", max_steps=4), model=model2, tokenizer=tok)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["resumed_from_step"] == 2 and summary["global_step"] == 4
    assert [r["step"] for r in read_log(out) if "loss" in r] == [1, 2, 3, 4]


def test_bad_inputs(tmp_path, setup):
    model, tok, text = setup
    with pytest.raises(ConfigError, match="--mix-ratio"):
        _cfg(tmp_path, text, mix_ratio=0.3)
    for bad, name in (({"mix_steps": 2}, "--mix-steps"), ({"mix_steps": 0, "code_switched": str(text)}, "--mix-steps"),
                      ({"mix_steps": 2, "mix_ratio": 0.0, "code_switched": str(text)}, "--mix-ratio")):
        with pytest.raises(ConfigError, match=name):
            _cfg(tmp_path, text, **bad)
    with pytest.raises(ConfigError, match="--text"):
        lapt.train_lapt(_cfg(tmp_path, text, seq_len=100000), model=model, tokenizer=tok)
    (tmp_path / "out").mkdir()
    with pytest.raises(ConfigError, match="--out"):
        lapt.train_lapt(_cfg(tmp_path, text), model=model, tokenizer=tok)
