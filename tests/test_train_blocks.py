"""LAPT data on 🤗 datasets: streamed or Dataset.map(num_proc) tokenisation gives pack_texts' blocks, cached."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import helpers
from langshift.errors import LangshiftError
from langshift.train import lapt
from langshift.train.data import block_dataset, mix_blocks, pack_texts

DOCS = [t + f" {i}" for i in range(15) for t in helpers.ES_TEXT]


@pytest.fixture(scope="module")
def chat():
    return helpers.byte_level_bpe(helpers.ES_TEXT)


def test_streamed_and_num_proc_blocks_equal_pack_texts_for_text_jsonl_parquet(tmp_path, chat):
    ref = pack_texts(chat, DOCS, seq_len=12)
    txt, jsonl, parquet = tmp_path / "t.txt", tmp_path / "t.jsonl", tmp_path / "t.parquet"
    helpers.write_lines(txt, DOCS[:5] + [""] + DOCS[5:])  # a blank line is no document
    jsonl.write_text("".join(json.dumps({"text": d}) + "\n" for d in DOCS), encoding="utf-8")
    pq.write_table(pa.table({"text": DOCS}), parquet)
    for src in (txt, jsonl, parquet):
        for n in (1, 2):
            blocks = block_dataset(src, chat, 12, tmp_path / f"cache-{n}", num_proc=n, batch_size=7)
            assert blocks["input_ids"] == ref, (src, n)
    assert len(ref) > 50 and chat.convert_tokens_to_ids("<|endoftext|>") in ref[0] + ref[1] + ref[2]


def test_cache_is_reused_and_keyed_by_file_seq_len_and_tokenizer(tmp_path, chat):
    txt = helpers.write_lines(tmp_path / "t.txt", DOCS)
    cache = tmp_path / "cache"
    block_dataset(txt, chat, 12, cache)
    (first,) = os.listdir(cache)
    inode = os.stat(cache / first).st_ino
    assert len(block_dataset(txt, chat, 12, cache)) == len(pack_texts(chat, DOCS, 12))
    assert os.listdir(cache) == [first] and os.stat(cache / first).st_ino == inode  # reused, not rewritten
    block_dataset(txt, chat, 16, cache)
    other = helpers.byte_level_bpe(helpers.EN_TEXT)
    block_dataset(txt, other, 12, cache)
    helpers.write_lines(txt, DOCS[:20])  # the file changed: its blocks are made again
    assert block_dataset(txt, chat, 12, cache)["input_ids"] == pack_texts(chat, DOCS[:20], 12)
    assert len(os.listdir(cache)) == 4


def test_bad_line_names_it_and_leaves_no_partial_cache(tmp_path, chat):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(("\n".join(DOCS) + "\n").encode() + b"caf\xe9\n")
    for n in (1, 2):
        with pytest.raises(LangshiftError, match=f"line {len(DOCS) + 1} is not UTF-8"):
            block_dataset(bad, chat, 12, tmp_path / f"c{n}", num_proc=n)
        assert not [p for p in os.listdir(tmp_path / f"c{n}") if p.startswith(("blocks-", ".blocks-"))]


def test_mixed_blocks_equal_mix_blocks_of_lists(tmp_path, chat):
    mono, cs = helpers.write_lines(tmp_path / "m.txt", DOCS), helpers.write_lines(tmp_path / "c.txt", DOCS[:30])
    cfg = lapt.LAPTConfig(model="-", text=str(mono), code_switched=str(cs), mix_ratio=0.3, out="-", seq_len=12,
                          seed=3, num_proc=2)
    blocks, stats = lapt.block_data(cfg, chat, tmp_path / "cache")
    expected, expected_stats = mix_blocks(pack_texts(chat, DOCS, 12), pack_texts(chat, DOCS[:30], 12), 0.3, 3)
    assert blocks["input_ids"] == expected and stats == expected_stats and stats["code_switched_blocks"] > 5
    assert lapt.build_blocks(cfg, chat) == (expected, expected_stats)
