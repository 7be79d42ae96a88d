"""Byte-exact overlap across families, specials by role, ambiguity and the zero-overlap error."""

from __future__ import annotations

import json

import pytest

import helpers
from langshift.errors import LangshiftError
from langshift.vocab.canonical import canonical_vocab
from langshift.vocab.overlap import compute_overlap


def _independent_matches(source, target) -> set[int]:
    """Target ids of ordinary/byte tokens whose (bytes, word_start) occurs among the source's: the oracle."""
    keys = {t.key for t in canonical_vocab(source) if t.kind in ("normal", "byte")}
    return {t.id for t in canonical_vocab(target) if t.kind in ("normal", "byte") and t.key in keys}


def test_bpe_vs_bpe(source_bpe, target_bpe):
    ov = compute_overlap(source_bpe, target_bpe)
    ordinary = {t for t, h in ov.how.items() if h in ("normal", "byte")}
    assert ordinary == _independent_matches(source_bpe, target_bpe)
    src, tgt = canonical_vocab(source_bpe), canonical_vocab(target_bpe)
    for t in ordinary:
        assert tgt[t].key == src[ov.pairs[t]].key
    # all 256 single-byte alphabet tokens match the same single byte in the source
    for t in tgt:
        if len(target_bpe.convert_ids_to_tokens(t.id)) == 1 and t.kind in ("normal", "byte"):
            assert source_bpe.convert_ids_to_tokens(ov.pairs[t.id]) == target_bpe.convert_ids_to_tokens(t.id)
    # shared specials (same strings, same roles) map onto themselves
    for s in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        assert ov.pairs[target_bpe.convert_tokens_to_ids(s)] == source_bpe.convert_tokens_to_ids(s)
    assert sorted(ov.new_ids) == sorted(set(range(len(target_bpe))) - set(ov.pairs))
    assert "Ġel" in [target_bpe.convert_ids_to_tokens(i) for i in ov.new_ids]  # Spanish-only word
    report = ov.report()
    json.dumps(report)
    assert report["matched"] == len(ov.pairs) and report["new"] == len(ov.new_ids)
    assert sum(report["by_kind"].values()) == report["matched"]


def test_byte_level_vs_unigram_byte_fallback(source_bpe, target_unigram):
    ov = compute_overlap(source_bpe, target_unigram)
    for b in range(256):
        tid = target_unigram.convert_tokens_to_ids(f"<0x{b:02X}>")
        sid = ov.pairs[tid]
        assert canonical_vocab(source_bpe)[sid].bytes == bytes([b])
    # <0xC3> is the raw lead byte, the same as byte-level "Ã" (not a decoded U+FFFD, not zero)
    assert ov.pairs[target_unigram.convert_tokens_to_ids("<0xC3>")] == source_bpe.convert_tokens_to_ids("Ã")
    assert ov.how[target_unigram.convert_tokens_to_ids("<0xC3>")] == "byte"
    # ▁ (a lone space) is byte-level Ġ; "▁la" is byte-level "Ġla" when the source has it
    assert ov.pairs[target_unigram.convert_tokens_to_ids("▁")] == source_bpe.convert_tokens_to_ids("Ġ")
    if "Ġthe" in source_bpe.get_vocab() and "▁the" in target_unigram.get_vocab():
        assert ov.pairs[target_unigram.convert_tokens_to_ids("▁the")] == source_bpe.convert_tokens_to_ids("Ġthe")
    ordinary = {t for t, h in ov.how.items() if h in ("normal", "byte")}
    assert ordinary == _independent_matches(source_bpe, target_unigram)


def test_ambiguous_source_keys_pick_the_ordinary_token(target_unigram, target_bpe):
    # unigram source: "a" and "<0x61>" share the key (b"a", not a word start)
    ov = compute_overlap(target_unigram, target_bpe)
    a = target_bpe.convert_tokens_to_ids("a")
    assert ov.pairs[a] == target_unigram.convert_tokens_to_ids("a")
    key = (b"a", False)
    assert key in ov.ambiguous and target_unigram.convert_tokens_to_ids("<0x61>") in ov.ambiguous[key]
    report = ov.report()
    assert report["ambiguous_keys"] == len(ov.ambiguous) > 0
    assert any(e["token"]["text"] == "a" for e in report["ambiguous_examples"])


def test_roles_do_not_overwrite_each_other(source_bpe):
    # source: pad == eos (<|im_end|>); target: its own pad and eos
    source = helpers.byte_level_bpe(helpers.EN_TEXT * 3, vocab_size=320)
    source.pad_token = "<|im_end|>"
    target = helpers.sentencepiece_unigram(helpers.ES_TEXT * 3, vocab_size=120)
    target.add_special_tokens({"pad_token": "<pad>", "mask_token": "<mask>"})
    ov = compute_overlap(source, target)
    eos_src = source.convert_tokens_to_ids("<|im_end|>")
    assert ov.pairs[target.eos_token_id] == eos_src
    assert ov.pairs[target.pad_token_id] == eos_src
    assert ov.pairs[target.bos_token_id] == source.convert_tokens_to_ids("<|im_start|>")
    assert ov.pairs[target.unk_token_id] == source.convert_tokens_to_ids("<|endoftext|>")
    assert all(ov.how[getattr(target, f"{r}_token_id")] == "special_by_role" for r in ("eos", "bos", "pad", "unk"))
    # the source has no mask role and no "<mask>" token: not matched
    assert target.mask_token_id in ov.new_ids
    assert ov.report()["roles"]["mask_token"]["source_id"] is None
    # ... but a role the source lacks still matches by identical content
    source.add_tokens(["<mask>"], special_tokens=True)
    ov = compute_overlap(source, target)
    assert ov.pairs[target.mask_token_id] == source.convert_tokens_to_ids("<mask>")
    assert ov.how[target.mask_token_id] == "special_by_content"


def test_target_pad_equal_eos_keeps_the_eos_row():
    source = helpers.byte_level_bpe(helpers.EN_TEXT * 3, vocab_size=320)  # pad = <|endoftext|>, eos = <|im_end|>
    target = helpers.byte_level_bpe(helpers.ES_TEXT * 3, vocab_size=330)
    target.pad_token = target.eos_token
    ov = compute_overlap(source, target)
    assert ov.pairs[target.eos_token_id] == source.eos_token_id != source.pad_token_id
    assert ov.role_conflicts and ov.role_conflicts[0]["role"] == "pad_token"
    assert ov.role_conflicts[0]["kept_source_id"] == source.eos_token_id


def test_chat_markers_and_added_tokens_by_content():
    source = helpers.byte_level_bpe(helpers.EN_TEXT * 3, vocab_size=320)
    target = helpers.sentencepiece_unigram(helpers.ES_TEXT * 3, vocab_size=120)
    target.add_special_tokens({"extra_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    source.add_tokens(["<sep2>"])
    target.add_tokens(["<sep2>"])
    ov = compute_overlap(source, target)
    for s in ("<|im_start|>", "<|im_end|>"):
        assert ov.pairs[target.convert_tokens_to_ids(s)] == source.convert_tokens_to_ids(s)
        assert ov.how[target.convert_tokens_to_ids(s)] == "special_by_content"
    assert ov.how[target.convert_tokens_to_ids("<sep2>")] == "added_by_content"
    assert ov.by_kind["added_by_content"] == 1


def test_zero_overlap_names_both_tokenizers():
    greek = ["αβγ δεζ ηθι κλμ", "νξο πρσ τυφ χψω"] * 5
    latin = ["abc def ghi klm", "nop qrs tuv wxy"] * 5
    source, target = helpers.wordpiece(greek, vocab_size=60), helpers.wordpiece(latin, vocab_size=60)
    source.name_or_path, target.name_or_path = "greek-tok", "latin-tok"
    with pytest.raises(LangshiftError, match="same script") as err:
        compute_overlap(source, target)
    assert "greek-tok" in str(err.value) and "latin-tok" in str(err.value)
