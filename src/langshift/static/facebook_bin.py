"""Read a Facebook fastText ``.bin`` for look-ups, memory-mapping its n-gram matrix.

Written here because gensim's ``load_facebook_vectors`` copies the whole matrix and grows its
vocabulary arrays word by word: 50 s for a 2.4 GB model here, against ~1 s when the matrix is
memory-mapped and only the rows a look-up needs are read. The result is a gensim
``FastTextKeyedVectors`` (same n-gram hashing and word-vector composition as gensim and fastText);
training further needs the full model, which ``load_static(..., trainable=True)`` loads with gensim.

File layout (fastText ``FastText::saveModel``): magic and version (int32), 12 int32 arguments and
one float64, the dictionary (int32 size, nwords, nlabels; int64 ntokens, pruneidx_size; entries of
NUL-terminated UTF-8 word, int64 count, int8 type; pruneidx pairs), then the input matrix (bool
quantised, int64 rows, int64 cols, float32 data) — word rows first, then the n-gram buckets.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch

from ..errors import LangshiftError

MAGIC = 793712314
_ARGS = ("dim", "ws", "epoch", "min_count", "neg", "word_ngrams", "loss", "model", "bucket", "minn", "maxn",
         "lr_update_rate")


def _read(fh, fmt: str):
    size = struct.calcsize(fmt)
    data = fh.read(size)
    if len(data) != size:
        raise EOFError("file ends early")
    return struct.unpack(fmt, data)


def _read_entries(fh, size: int) -> list[str]:
    """``size`` dictionary entries (NUL-terminated word, int64 count, int8 type), read in large chunks."""
    words: list[str] = []
    buf, pos = b"", 0
    while len(words) < size:
        end = buf.find(b"\x00", pos)
        if end < 0 or end + 10 > len(buf):
            more = fh.read(1 << 22)
            if not more:
                raise EOFError("file ends inside the dictionary")
            buf, pos = buf[pos:] + more, 0
            continue
        words.append(buf[pos:end].decode("utf-8", errors="replace"))
        pos = end + 10  # skip the NUL, the int64 count and the int8 entry type
    fh.seek(pos - len(buf), 1)  # give back what was read past the dictionary
    return words


def load_facebook_bin(path: str | Path):
    """A gensim ``FastTextKeyedVectors`` over a memory-mapped Facebook ``.bin`` (not trainable)."""
    from gensim.models.fasttext import FastTextKeyedVectors

    path = Path(path)
    with open(path, "rb") as fh:
        # 1. Header: the format's magic number and the training arguments we need for look-ups.
        magic, _version = _read(fh, "@2i")
        if magic != MAGIC:
            raise LangshiftError(f"{path}: not a fastText .bin of the current format (magic {magic})")
        args = dict(zip(_ARGS, _read(fh, "@12i"), strict=True))
        _read(fh, "@d")
        # 2. Dictionary: words come first, labels (supervised models) after them.
        size, nwords, _nlabels = _read(fh, "@3i")
        _ntokens, prune_size = _read(fh, "@2q")
        words = _read_entries(fh, size)
        if prune_size > 0:
            raise LangshiftError(f"{path}: pruned (quantised) fastText models are not supported; give the full .bin")
        fh.seek(8 * max(prune_size, 0), 1)
        # 3. Input matrix: rows = nwords + bucket, memory-mapped where it lies.
        (quantised,) = _read(fh, "@?")
        if quantised:
            raise LangshiftError(f"{path}: quantised (.ftz-style) models are not supported; give the full .bin")
        rows, cols = _read(fh, "@2q")
        offset = fh.tell()
    if rows != nwords + args["bucket"] or cols != args["dim"]:
        raise LangshiftError(f"{path}: input matrix is {rows}×{cols}, expected {nwords + args['bucket']}×{args['dim']}")
    matrix = np.memmap(path, dtype=np.float32, mode="r", offset=offset, shape=(rows, cols))
    # 4. Keyed vectors: a word's vector is the mean of its own row and its n-gram rows, as in fastText
    #    (gensim's adjust_vectors computes the same word by word; here it is one gather and one scatter-add).
    kv = FastTextKeyedVectors(args["dim"], args["minn"], args["maxn"], args["bucket"])
    kv.index_to_key = words[:nwords]
    kv.key_to_index = {w: i for i, w in enumerate(kv.index_to_key)}
    kv.vectors_vocab = np.array(matrix[:nwords])
    kv.vectors_ngrams = matrix[nwords:]
    kv.recalc_char_ngram_buckets()
    counts = np.array([len(b) for b in kv.buckets_word], dtype=np.int64)
    flat = np.concatenate(kv.buckets_word).astype(np.int64) if counts.sum() else np.zeros(0, np.int64)
    order = np.argsort(flat, kind="stable")  # read the memory-mapped rows in file order
    rows = np.empty((len(flat), cols), dtype=np.float32)
    rows[order] = kv.vectors_ngrams[flat[order]]
    vectors = torch.from_numpy(kv.vectors_vocab.astype(np.float32, copy=True))
    vectors.index_add_(0, torch.from_numpy(np.repeat(np.arange(nwords), counts)), torch.from_numpy(rows))
    kv.vectors = (vectors / torch.from_numpy(counts + 1).unsqueeze(1).float()).numpy()
    return kv
