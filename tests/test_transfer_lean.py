"""Transfer and transplant on the checkpoint's files: bf16 in, bf16 out, body bytes untouched, the
vocabulary rows equal to what the in-memory float32 path computes."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors import safe_open

import helpers
from langshift.models import INDEX_FILE, read_checkpoint
from langshift.train.transplant import transplant
from langshift.transfer.apply import transfer
from langshift.transfer.config import TransferConfig
from langshift.transfer.run import run_transfer

VOCAB = ("model.embed_tokens.weight", "lm_head.weight")


def bf16_folder(path, tokenizer, tied, shard_size=None, pad_rows=0, seed=0, hidden=32):
    model = helpers.tiny_llama(len(tokenizer), tied=tied, pad_rows=pad_rows, seed=seed, hidden=hidden,
                               bos_id=tokenizer.bos_token_id, eos_id=tokenizer.eos_token_id).to(torch.bfloat16)
    path.mkdir(parents=True)
    model.save_pretrained(path, **({"max_shard_size": shard_size} if shard_size else {}))
    tokenizer.save_pretrained(path)
    return path


def tensors(folder):
    """key → (dtype string, raw bytes) of every tensor of a folder's safetensors files."""
    ckpt = read_checkpoint(folder)
    out = {}
    for name in ckpt.files:
        with safe_open(folder / name, framework="pt") as fh:
            for key in fh.keys():
                t = fh.get_tensor(key)
                out[key] = (t.dtype, t.contiguous().view(torch.uint8).numpy().tobytes(), tuple(t.shape))
    return ckpt, out


def old_path_rows(folder, source_tok, target_tok, cfg):
    """The in-memory float32 path (load the whole model, transfer, resize) as the reference."""
    from langshift.models import load_model

    model, _ = transfer(load_model(str(folder)), source_tok, target_tok, cfg)
    return model.get_input_embeddings().weight.detach(), model.get_output_embeddings().weight.detach()


def test_sharded_bf16_untied_model_keeps_its_body_bytes_and_dtype(source_bpe, target_bpe, tmp_path):
    from transformers import AutoModelForCausalLM

    src = bf16_folder(tmp_path / "src", source_bpe, tied=False, shard_size="20KB", pad_rows=5)
    tok_dir = tmp_path / "tgt"
    target_bpe.save_pretrained(tok_dir)
    ckpt_in, before = tensors(src)
    assert ckpt_in.index is not None and len(ckpt_in.files) >= 3
    cfg = TransferConfig(model=str(src), tokenizer=str(tok_dir), out=str(tmp_path / "out"), method="fvt",
                         pad_to_multiple_of=8)
    summary = run_transfer(cfg).to_dict()
    out = tmp_path / "out"
    ckpt_out, after = tensors(out)
    assert summary["dtype"] == "bfloat16" and summary["counts"]["rows"] == 336
    # every body tensor bit for bit; untouched files are the same file (hard link) or equal bytes
    body = [k for k in before if k not in VOCAB]
    assert body and all(after[k] == before[k] for k in body)
    assert set(after) == set(before) and all(after[k][0] == torch.bfloat16 for k in after)
    vocab_files = {ckpt_in.weight_map[k] for k in VOCAB}
    assert sorted(vocab_files) == summary["rewritten_files"]
    for name in set(ckpt_in.files) - vocab_files:
        assert (out / name).read_bytes() == (src / name).read_bytes()
    # index and config
    index = json.loads((out / INDEX_FILE).read_text())
    assert index["weight_map"] == ckpt_in.weight_map
    assert index["metadata"]["total_size"] == sum(len(b) for _, b, _ in after.values())
    config, config_in = (json.loads((f / "config.json").read_text()) for f in (out, src))
    assert config["vocab_size"] == 336 and config["tie_word_embeddings"] is False
    assert config["eos_token_id"] == target_bpe.eos_token_id and config["bos_token_id"] == target_bpe.bos_token_id
    assert config["dtype"] == config_in["dtype"] == "bfloat16"
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] == target_bpe.eos_token_id
    # loads, and its rows are the old float32 path's rows in bf16
    loaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16)
    ref_in, ref_out = old_path_rows(src, source_bpe, target_bpe, cfg)
    assert torch.equal(loaded.get_input_embeddings().weight, ref_in.to(torch.bfloat16))
    assert torch.equal(loaded.get_output_embeddings().weight, ref_out.to(torch.bfloat16))
    assert not torch.equal(ref_in, ref_out)
    ids = torch.tensor([[target_bpe.bos_token_id, 40, 41]])
    assert torch.isfinite(loaded(ids).logits.float()).all()


def test_single_file_tied_model_with_padding_rows(source_bpe, target_bpe, tmp_path):
    from transformers import AutoModelForCausalLM

    src = bf16_folder(tmp_path / "src", source_bpe, tied=True, pad_rows=7)
    from safetensors.torch import load_file, save_file
    weights = load_file(src / "model.safetensors")
    weights["model.embed_tokens.weight"][len(source_bpe):] = 1e4   # poison: rows beyond the tokenizer
    save_file(weights, src / "model.safetensors", metadata={"format": "pt"})
    tok_dir = tmp_path / "tgt"
    target_bpe.save_pretrained(tok_dir)
    cfg = TransferConfig(model=str(src), tokenizer=str(tok_dir), out=str(tmp_path / "out"), method="mean")
    summary = run_transfer(cfg).to_dict()
    out = tmp_path / "out"
    _, before = tensors(src)
    _, after = tensors(out)
    assert summary["tied"] is True and summary["rewritten_files"] == ["model.safetensors"]
    assert "lm_head.weight" not in after and not (out / INDEX_FILE).exists()
    assert all(after[k] == before[k] for k in before if k not in VOCAB)
    config = json.loads((out / "config.json").read_text())
    assert config["tie_word_embeddings"] is True and config["vocab_size"] == len(target_bpe)
    loaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16)
    emb = loaded.get_input_embeddings().weight
    assert emb.dtype == torch.bfloat16 and emb.shape[0] == len(target_bpe) and emb.abs().max() < 100
    assert loaded.get_output_embeddings().weight.data_ptr() == emb.data_ptr()
    ref_in, _ = old_path_rows(src, source_bpe, target_bpe, cfg)
    assert torch.equal(emb, ref_in.to(torch.bfloat16))


@pytest.mark.parametrize("tied_a, tied_b", [(False, True), (True, False)])
def test_lean_transplant_of_sharded_bf16_models(source_bpe, target_bpe, tmp_path, tied_a, tied_b):
    from transformers import AutoModelForCausalLM

    a = bf16_folder(tmp_path / "a", target_bpe, tied=tied_a, seed=3)
    b = bf16_folder(tmp_path / "b", source_bpe, tied=tied_b, shard_size="20KB", seed=4)
    out = transplant(str(a), str(b), str(tmp_path / "c"))
    _, ta = tensors(a)
    _, tb = tensors(b)
    ckpt_c, tc = tensors(out)
    assert all(tc[k] == tb[k] for k in tb if k not in VOCAB)
    assert tc["model.embed_tokens.weight"] == ta["model.embed_tokens.weight"]
    assert ("lm_head.weight" in tc) == (not tied_a)
    if not tied_a:
        assert tc["lm_head.weight"] == ta["lm_head.weight"]
        assert ckpt_c.weight_map["lm_head.weight"] == ckpt_c.weight_map["model.embed_tokens.weight"]
    config = json.loads((out / "config.json").read_text())
    assert config["tie_word_embeddings"] is tied_a and config["vocab_size"] == len(target_bpe)
    c = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16)
    tied_c = c.get_output_embeddings().weight.data_ptr() == c.get_input_embeddings().weight.data_ptr()
    assert tied_c == tied_a
    assert c(torch.tensor([[1, 2, 3]])).logits.shape[-1] == len(target_bpe)


def test_unchanged_shards_are_linked_not_rewritten(source_bpe, target_bpe, tmp_path):
    src = bf16_folder(tmp_path / "src", source_bpe, tied=False, shard_size="20KB")
    tok_dir = tmp_path / "tgt"
    target_bpe.save_pretrained(tok_dir)
    summary = run_transfer(TransferConfig(model=str(src), tokenizer=str(tok_dir), out=str(tmp_path / "out"),
                                          method="mean")).to_dict()
    ckpt = read_checkpoint(src)
    linked = [n for n in ckpt.files if n not in summary["rewritten_files"]]
    assert linked
    for name in linked:   # same inode where the file system allows links (tmp_path does)
        assert os.stat(src / name).st_ino == os.stat(tmp_path / "out" / name).st_ino
