"""Read a Facebook fastText ``.bin`` safely, and for look-ups memory-map its input matrix.

Written here because gensim's ``load_facebook_vectors`` copies the whole matrix and composes every
vocabulary word's vector word by word: 50 s for a 2.4 GB model here, against a fraction of a second
when the matrix is memory-mapped and only the rows a look-up needs are read. Same n-gram hashing and
word-vector composition as fastText and gensim (tests compare them). Training further needs the full
model, which ``load_static(..., trainable=True)`` loads with gensim — after ``read_bin`` has checked
the file, since gensim's reader trusts every header field (a hostile header hangs it or asks for TiBs).

File layout (fastText ``FastText::saveModel``): magic and version (int32), 12 int32 arguments and
one float64, the dictionary (int32 size, nwords, nlabels; int64 ntokens, pruneidx_size; entries of
NUL-terminated UTF-8 word, int64 count, int8 type; pruneidx pairs), then the input matrix (bool
quantised, int64 rows, int64 cols, float32 data) — word rows first, then the n-gram buckets — and
the output matrix in the same form. ``read_bin`` checks every field against sane limits and the
file's real size before anything is allocated or looped over.
"""

from __future__ import annotations

import math
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LangshiftError
from .ngrams import MAX_NGRAM, mean_rows, ngram_buckets

MAGIC = 793712314
VERSIONS = (11, 12)          # fastText writes 12; gensim reads both the same way
MAX_WORD_BYTES = 1 << 16     # fastText words are whitespace-free tokens; longer means a corrupt file
_ENTRY_MIN = 10              # an empty word: its NUL, the int64 count and the int8 type
_ARGS = ("dim", "ws", "epoch", "min_count", "neg", "word_ngrams", "loss", "model", "bucket", "minn", "maxn",
         "lr_update_rate")
_INT32_MAX = 2**31 - 1
# Inclusive bounds of each argument: wide enough for any real model, narrow enough that nothing a
# reader or trainer does with them (windows, negatives, n-gram lengths) can hang or blow up.
_LIMITS = {"dim": (1, 1 << 16), "ws": (1, 10_000), "epoch": (0, 1_000_000), "min_count": (0, _INT32_MAX),
           "neg": (0, 10_000), "word_ngrams": (0, 1_000), "loss": (1, 4), "model": (1, 3),
           "bucket": (0, _INT32_MAX), "minn": (0, MAX_NGRAM), "maxn": (0, MAX_NGRAM),
           "lr_update_rate": (0, _INT32_MAX)}
_LOSSES = {1: "hs", 2: "ns", 3: "softmax", 4: "ova"}
_MODELS = {1: "cbow", 2: "skipgram", 3: "supervised"}
_HEADER_BYTES = struct.calcsize("@2i12id3i") + struct.calcsize("@2q")  # read field by field: no padding


class BinFormatError(LangshiftError):
    """A file is not a usable fastText ``.bin``; ``reason`` says why, without the path."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


@dataclass
class BinHeader:
    """Everything before the matrices' data, checked: ``input_offset`` is where the float32 input
    matrix (``input_rows`` × ``dim``) starts."""
    version: int
    args: dict[str, int]
    t: float
    nwords: int
    nlabels: int
    ntokens: int
    words: list[str]
    input_offset: int
    input_rows: int
    output_rows: int

    @property
    def dim(self) -> int:
        return self.args["dim"]

    @property
    def model(self) -> str:
        return _MODELS[self.args["model"]]

    @property
    def loss(self) -> str:
        return _LOSSES[self.args["loss"]]


class _Reader:
    """Reads fixed-size fields, refusing to read past the file's real end."""

    def __init__(self, fh, total: int, path: Path):
        self.fh, self.total, self.path = fh, total, path

    @property
    def left(self) -> int:
        return self.total - self.fh.tell()

    def read(self, fmt: str, what: str) -> tuple:
        size = struct.calcsize(fmt)
        if size > self.left:
            raise BinFormatError(self.path, f"the file ends inside {what} (truncated)")
        return struct.unpack(fmt, self.fh.read(size))


def _check_args(path: Path, args: dict[str, int], t: float) -> None:
    for name, (lo, hi) in _LIMITS.items():
        if not lo <= args[name] <= hi:
            raise BinFormatError(path, f"header field {name}={args[name]} is outside [{lo}, {hi}]: not a "
                                       "fastText model, or a corrupt one")
    if args["maxn"] > 0 and args["minn"] > args["maxn"]:
        raise BinFormatError(path, f"header has minn={args['minn']} > maxn={args['maxn']}: corrupt file")
    if not (math.isfinite(t) and 0.0 <= t <= 1.0):
        raise BinFormatError(path, f"header field t (sampling threshold) = {t!r} is outside [0, 1]: corrupt file")


def _read_entries(r: _Reader, size: int, nwords: int) -> list[str]:
    """``size`` dictionary entries (NUL-terminated word, int64 count, int8 type), read in large chunks;
    words (type 0) come first, then labels (type 1)."""
    fh, path = r.fh, r.path
    words: list[str] = []
    buf, pos = b"", 0
    while len(words) < size:
        end = buf.find(b"\x00", pos)
        if (end if end >= 0 else len(buf)) - pos > MAX_WORD_BYTES:
            raise BinFormatError(path, f"dictionary entry {len(words)} is longer than {MAX_WORD_BYTES} bytes: "
                                       "corrupt file")
        if end < 0 or end + _ENTRY_MIN > len(buf):
            more = fh.read(1 << 22)
            if not more:
                raise BinFormatError(path, f"the file ends inside the dictionary (entry {len(words)} of {size}; "
                                           "truncated)")
            buf, pos = buf[pos:] + more, 0
            continue
        count = int.from_bytes(buf[end + 1:end + 9], sys.byteorder, signed=True)
        kind = buf[end + 9]
        if kind != (0 if len(words) < nwords else 1) or count < 0:
            raise BinFormatError(path, f"dictionary entry {len(words)} is malformed (type {kind}, count {count}): "
                                       "corrupt file")
        # gensim decodes the same way, so both readers give a broken word the same key
        words.append(buf[pos:end].decode("utf-8", errors="backslashreplace"))
        pos = end + _ENTRY_MIN
    fh.seek(pos - len(buf), 1)  # give back what was read past the dictionary
    if len(set(words)) != len(words):
        raise BinFormatError(path, "the dictionary holds the same word twice: corrupt file")
    return words


def _matrix_header(r: _Reader, what: str) -> tuple[int, int]:
    (quantised,) = r.read("@B", f"the {what} matrix header")
    if quantised > 1:
        raise BinFormatError(r.path, f"the {what} matrix's 'quantised' flag is {quantised}: corrupt file")
    if quantised:
        raise BinFormatError(r.path, "quantised (.ftz-style) models are not supported; give the full .bin")
    rows, cols = r.read("@2q", f"the {what} matrix header")
    return rows, cols


def read_bin(path: str | Path) -> BinHeader:
    """Check a fastText ``.bin`` from end to end without reading its matrices' data; raises
    ``BinFormatError`` (in milliseconds, whatever the header claims) when it is not a usable model."""
    path = Path(path)
    if path.is_dir():
        raise BinFormatError(path, "is a folder, not a fastText .bin file")
    try:
        total = path.stat().st_size
        fh = open(path, "rb")
    except OSError as exc:
        raise BinFormatError(path, f"cannot be read ({exc.strerror or exc})") from exc
    with fh:
        r = _Reader(fh, total, path)
        if total < _HEADER_BYTES:
            raise BinFormatError(path, f"is {total} bytes, too short for a fastText .bin header")
        # 1. Header: magic, version, the training arguments.
        magic, version = r.read("@2i", "the header")
        if magic != MAGIC:
            raise BinFormatError(path, "does not start with fastText's magic number: not a Facebook fastText .bin "
                                       "(a .vec text file must be named *.vec; old pre-2017 .bin files are not "
                                       "supported)")
        if version not in VERSIONS:
            raise BinFormatError(path, f"fastText format version {version} is not supported (only {VERSIONS})")
        args = dict(zip(_ARGS, r.read("@12i", "the header"), strict=True))
        (t,) = r.read("@d", "the header")
        _check_args(path, args, t)
        # 2. Dictionary: counts first, bounded by the bytes that follow, then the entries.
        size, nwords, nlabels = r.read("@3i", "the dictionary header")
        ntokens, prune_size = r.read("@2q", "the dictionary header")
        if nwords < 0 or nlabels < 0 or size != nwords + nlabels or ntokens < 0:
            raise BinFormatError(path, f"dictionary header is inconsistent (size {size}, words {nwords}, labels "
                                       f"{nlabels}, tokens {ntokens}): corrupt file")
        if prune_size > 0:
            raise BinFormatError(path, "pruned (quantised) fastText models are not supported; give the full .bin")
        if prune_size < -1:
            raise BinFormatError(path, f"dictionary pruneidx_size {prune_size} is negative: corrupt file")
        if size * _ENTRY_MIN > r.left:
            raise BinFormatError(path, f"the dictionary claims {size} entries but only {r.left} bytes follow "
                                       "(truncated or corrupt file)")
        words = _read_entries(r, size, nwords)
        # 3. Input matrix: nwords + bucket rows of dim floats, all of them inside the file.
        rows, cols = _matrix_header(r, "input")
        if rows != nwords + args["bucket"] or cols != args["dim"]:
            raise BinFormatError(path, f"input matrix is {rows}×{cols}, expected {nwords + args['bucket']}×"
                                       f"{args['dim']} (words + buckets × dim): corrupt file")
        offset = fh.tell()
        if rows * cols * 4 > r.left:
            raise BinFormatError(path, f"the input matrix needs {rows * cols * 4} bytes but {r.left} follow "
                                       "(truncated)")
        fh.seek(rows * cols * 4, 1)
        # 4. Output matrix: one row per word (per label for a supervised model); the file ends there.
        out_rows, out_cols = _matrix_header(r, "output")
        want = nlabels if args["model"] == 3 else nwords
        if out_rows != want or out_cols != args["dim"]:
            raise BinFormatError(path, f"output matrix is {out_rows}×{out_cols}, expected {want}×{args['dim']}: "
                                       "corrupt file")
        end = fh.tell() + out_rows * out_cols * 4
        if end != total:
            raise BinFormatError(path, f"the file is {total} bytes but its header describes {end} "
                                       f"({'truncated' if end > total else 'trailing data'})")
    return BinHeader(version, args, t, nwords, nlabels, ntokens, words, offset, rows, out_rows)


class FacebookVectors:
    """Look-ups in a memory-mapped ``.bin`` without gensim (whose import alone takes a second): a
    word's vector is the mean of its own row and its n-gram rows, as in fastText, composed for the
    words asked for. ``to_gensim()`` gives gensim keyed vectors for everything else (neighbours).
    ``path`` is the ``.bin`` the rows come from (None when built from arrays)."""

    def __init__(self, dim: int, min_n: int, max_n: int, bucket: int, words: list[str], matrix: np.ndarray,
                 path: str | Path | None = None):
        self.vector_size, self.min_n, self.max_n, self.bucket = dim, min_n, max_n, bucket
        self.index_to_key = words
        self.key_to_index = {w: i for i, w in enumerate(words)}
        self.vectors_vocab, self.vectors_ngrams = matrix[: len(words)], matrix[len(words):]
        self.path = Path(path) if path is not None else None
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
        kv.vectors_vocab, kv.vectors_ngrams = np.asarray(self.vectors_vocab), np.asarray(self.vectors_ngrams)
        kv.vectors = self.vectors
        return kv


def load_facebook_bin(path: str | Path) -> FacebookVectors:
    """Look-up vectors over a memory-mapped Facebook ``.bin`` (not trainable), checked by ``read_bin``."""
    head = read_bin(path)
    args = head.args
    matrix = np.memmap(path, dtype=np.float32, mode="r", offset=head.input_offset, shape=(head.input_rows, head.dim))
    maxn = args["maxn"]  # maxn 0: the model has no character n-grams
    return FacebookVectors(head.dim, args["minn"] if maxn else 0, maxn, args["bucket"], head.words[: head.nwords],
                           matrix, path)
