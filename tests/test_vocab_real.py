"""The real SmolLM2 tokenizer against a Spanish BPE trained from the offline Bible."""

from __future__ import annotations

import pytest

from langshift.models import load_tokenizer
from langshift.resources import BUILTIN_MODEL, bible_verses
from langshift.vocab.canonical import canonical_vocab
from langshift.vocab.fertility import fertility
from langshift.vocab.overlap import compute_overlap
from langshift.vocab.train import train_tokenizer


@pytest.mark.real_model
def test_smollm2_vs_spanish_bpe(real_model_path):
    source = load_tokenizer(BUILTIN_MODEL)
    verses = list(bible_verses("es").values())[:3000]
    target = train_tokenizer(verses, "bpe", 8000, source, min_frequency=1, show_progress=False)
    assert len(target) == 8000 and target.chat_template == source.chat_template

    ov = compute_overlap(source, target)  # its speed: bench/transfer_speed.py
    report = ov.report()
    assert 0.2 < report["matched_share"] < 0.9

    # the target's 256 single-byte tokens match the same byte wherever SmolLM2 has it; SmolLM2 lacks 21 single
    # bytes (6 control characters, 0xC0/0xC1/0xF1/0xF2 and 0xF5-0xFF), which must stay new
    tgt = canonical_vocab(target)
    singles = [t.id for t in tgt if t.kind in ("normal", "byte") and len(target.convert_ids_to_tokens(t.id)) == 1]
    assert len(singles) == 256
    source_singles = {tok for tok in source.get_vocab() if len(tok) == 1}
    assert len(source_singles) == 235
    for tid in singles:
        token = target.convert_ids_to_tokens(tid)
        if token in source_singles:
            assert source.convert_ids_to_tokens(ov.pairs[tid]) == token
        else:
            assert tid in ov.new_ids
    # specials: same roles, same rows; chat markers too
    for role in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
        assert ov.pairs[getattr(target, role)] == getattr(source, role)
    for tid in range(17):
        assert ov.pairs[tid] == tid
    # the Spanish tokenizer needs fewer tokens per word on Spanish text it was not trained on
    held_out = list(bible_verses("es").values())[-500:]
    assert fertility(target, held_out)["tokens_per_word"] < fertility(source, held_out)["tokens_per_word"]
