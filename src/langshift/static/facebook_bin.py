"""Read a Facebook fastText ``.bin`` for look-ups, memory-mapping its input matrix.

Written here because gensim's ``load_facebook_vectors`` copies the whole matrix and composes every
vocabulary word's vector word by word: 50 s for a 2.4 GB model here, against a fraction of a second
when the matrix is memory-mapped and only the rows a look-up needs are read. Same n-gram hashing and
word-vector composition as fastText and gensim (tests compare them); training further needs the full
model, which ``load_static(..., trainable=True)`` loads with gensim.

File layout (fastText ``FastText::saveModel``): magic and version (int32), 12 int32 arguments and
one float64, the dictionary (int32 size, nwords, nlabels; int64 ntokens, pruneidx_size; entries of
NUL-terminated UTF-8 word, int64 count, int8 type; pruneidx pairs), then the input matrix (bool
quantised, int64 rows, int64 cols, float32 data) — word rows first, then the n-gram buckets.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import LangshiftError
from .ngrams import mean_rows, ngram_buckets

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


class FacebookVectors:
    """Look-ups in a memory-mapped ``.bin`` without gensim (whose import alone takes a second): a
    word's vector is the mean of its own row and its n-gram rows, as in fastText, composed for the
    words asked for. ``to_gensim()`` gives gensim keyed vectors for everything else (neighbours, saving)."""

    def __init__(self, dim: int, min_n: int, max_n: int, bucket: int, words: list[str], matrix: np.ndarray):
        self.vector_size, self.min_n, self.max_n, self.bucket = dim, min_n, max_n, bucket
        self.index_to_key = words
        self.key_to_index = {w: i for i, w in enumerate(words)}
        self.vectors_vocab, self.vectors_ngrams = matrix[: len(words)], matrix[len(words):]
        self._composed: np.ndarray | None = None

    @property
    def vectors(self) -> np.ndarray:
        """Composed vectors of the whole vocabulary (computed once, on first use)."""
        if self._composed is None:
            self._composed = self.word_vectors(np.arange(len(self.index_to_key)))
        return self._composed

    def word_vectors(self, rows: np.ndarray) -> np.ndarray:
        """float32 (len(rows), dim): composed vectors of the vocabulary words at ``rows``."""
        owner, buckets = ngram_buckets([self.index_to_key[r] for r in rows], self.min_n, self.max_n, self.bucket)
        return mean_rows(self.vectors_ngrams, owner, buckets, len(rows), base=self.vectors_vocab[rows])

    def to_gensim(self):
        """gensim ``FastTextKeyedVectors`` with the same vectors (composes the whole vocabulary)."""
        from gensim.models.fasttext import FastTextKeyedVectors

        kv = FastTextKeyedVectors(self.vector_size, self.min_n, self.max_n, self.bucket)
        kv.index_to_key, kv.key_to_index = list(self.index_to_key), dict(self.key_to_index)
        kv.vectors_vocab, kv.vectors_ngrams = np.asarray(self.vectors_vocab), self.vectors_ngrams
        kv.vectors = self.vectors
        return kv


def load_facebook_bin(path: str | Path) -> FacebookVectors:
    """Look-up vectors over a memory-mapped Facebook ``.bin`` (not trainable)."""
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
    # 4. Look-ups compose word vectors when asked for (see the class).
    return FacebookVectors(args["dim"], args["minn"], args["maxn"], args["bucket"], words[:nwords], matrix)
