"""Mimic on SmolLM2-135M-Instruct after a transfer to a small Spanish BPE: the teacher read from the checkpoint
is the original model, and a short run trains the new rows only."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.real_model


def test_mimic_on_smollm2(real_model_path, tmp_path):
    import torch

    from langshift.models import load_model, load_tokenizer
    from langshift.resources import bible_verses
    from langshift.train import mimic, mimic_data
    from langshift.transfer.apply import transfer
    from langshift.transfer.config import TransferOptions
    from langshift.vocab.overlap import compute_overlap
    from langshift.vocab.train import train_tokenizer

    verses = list(bible_verses("es").values())
    source_tok = load_tokenizer(str(real_model_path))
    target_tok = train_tokenizer(verses[:3000], "bpe", 2000, source_tok, show_progress=False)
    original = load_model(str(real_model_path))
    model, prov = transfer(load_model(str(real_model_path)), source_tok, target_tok,
                           TransferOptions(method="mean", seed=0))
    text = tmp_path / "es.txt"
    text.write_text("\n".join(verses[5000:5040]) + "\n", encoding="utf-8")

    # the teacher: the original's matrices read alone (tied: one tensor), run through the transferred body
    embed, head = mimic.teacher_matrices(str(real_model_path))
    assert embed is head and torch.equal(embed, original.get_input_embeddings().weight)
    batch = mimic_data.collate_mimic(list(mimic_data.mimic_examples(str(text), target_tok, source_tok, 64))[:2], 0, 0)
    states, last = mimic.teacher_states(model, embed, batch["teacher_ids"], batch["teacher_mask"])
    with torch.no_grad():
        want = original(input_ids=batch["teacher_ids"], attention_mask=batch["teacher_mask"],
                        output_hidden_states=True)
    torch.testing.assert_close(states[-1], want.hidden_states[-1])
    torch.testing.assert_close(last @ head.T, want.logits)

    before = model.get_input_embeddings().weight.detach().clone()
    cfg = mimic.MimicConfig(model="unused", teacher=str(real_model_path), text=str(text), out=str(tmp_path / "out"),
                            seq_len=64, batch_size=2, max_steps=2, save_steps=2, objective="both")
    out = mimic.train_mimic(cfg, model=model, tokenizer=target_tok)
    moved = (model.get_input_embeddings().weight != before).any(dim=1).nonzero().flatten().tolist()
    new = set(compute_overlap(source_tok, target_tok).new_ids)
    assert len(new) == prov.counts["new"] and moved and set(moved) <= new  # the copied rows stay as they were
    reloaded = load_model(str(out))
    assert torch.equal(reloaded.get_input_embeddings().weight, model.get_input_embeddings().weight)
