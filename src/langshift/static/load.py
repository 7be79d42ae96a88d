"""Loading static spaces: Facebook fastText .bin (memory-mapped), .vec text, the folders ``StaticSpace.save``
writes, and gensim's pickles only when asked (``allow_pickle``)."""

from __future__ import annotations

import gzip
import json
import logging
import os
import struct
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .facebook_bin import _INT32_MAX, MAGIC
from .fasttext import FB_MODEL_FILE, META_FILE, SAFE_VECTORS_FILE, WORDS_FILE, StaticSpace
from .ngrams import MAX_NGRAM

log = logging.getLogger(__name__)

MODEL_FILE = "model.gensim"      # legacy gensim pickle (trainable): read only with allow_pickle
VECTORS_FILE = "vectors.kv"      # legacy gensim pickle (vectors only): read only with allow_pickle

# Loading ------------------------------------------------------------------------------------------
# Nothing here unpickles unless asked: gensim's own ``.save`` format is a pickle, and unpickling a file
# runs whatever code it carries. Facebook .bin, .vec text and safetensors are read as data.

_PICKLE_HEAD = tuple(bytes([0x80, proto]) for proto in range(2, 6))  # pickle protocols 2-5 (gensim: 4)
_GZIP_HEAD = b"\x1f\x8b"
_FIX = "give a Facebook fastText .bin, a .vec text file or a folder written by `langshift static train`"


def _pickle_refused(param: str, path: Path) -> ConfigError:
    return ConfigError(param, str(path), "is a gensim/Python pickle, and unpickling a file runs any code it "
                                         "carries, so it is not loaded by default. If you trust its origin, add "
                                         "--allow-pickle (allow_pickle: true) once, or convert it to the safe "
                                         "format with `langshift static convert --init FILE --out DIR "
                                         f"--allow-pickle`; or {_FIX}")


def _unpickle(path: Path, param: str, low: bool, source: str) -> StaticSpace:
    """A gensim-saved model or keyed vectors: only when the caller passed ``allow_pickle``."""
    from gensim.models import FastText, KeyedVectors
    from gensim.utils import SaveLoad

    log.warning("unpickling %s because --allow-pickle was given: a pickle can run arbitrary code on this machine; "
                "load only files you trust, and save them once in the safe format (`langshift static convert`)",
                path)
    try:
        obj = SaveLoad.load(str(path))
    except Exception as exc:  # any failure inside a foreign pickle: report it, not a traceback
        raise ConfigError(param, str(path), f"could not be unpickled as a gensim model ({type(exc).__name__}: "
                                            f"{exc}); {_FIX}") from exc
    if isinstance(obj, FastText):
        return StaticSpace(obj.wv, obj, low, source)
    if isinstance(obj, KeyedVectors):
        return StaticSpace(obj, None, low, source)
    raise ConfigError(param, str(path), f"holds a pickled {type(obj).__name__}, not a gensim FastText model or "
                                        f"keyed vectors; {_FIX}")


def _bin(path: Path, param: str, trainable: bool, low: bool, source: str) -> StaticSpace:
    """A Facebook .bin: checked field by field first (``read_bin``), then memory-mapped for look-ups or
    loaded by gensim (trainable; gensim's reader alone trusts the header)."""
    from .facebook_bin import BinFormatError, load_facebook_bin, read_bin

    try:
        if not trainable:
            return StaticSpace(load_facebook_bin(path), None, low, source)
        head = read_bin(path)
    except BinFormatError as exc:
        raise ConfigError(param, str(path), f"{exc.reason}; {_FIX}") from exc
    if head.model == "supervised" or head.loss not in ("ns", "hs"):
        raise ConfigError(param, str(path), f"is a {head.model} fastText model with {head.loss} loss; training "
                                            "further needs a cbow or skipgram word-vector model (ns or hs loss)")
    from gensim.models.fasttext import load_facebook_model

    model = load_facebook_model(str(path))
    return StaticSpace(model.wv, model, low, source)


def _vec(path: Path, param: str, low: bool) -> StaticSpace:
    """A word2vec/fastText ``.vec`` text file (optionally gzipped): header "<words> <dim>", then one
    "word v1 … vdim" line a word. Read here line by line, because gensim's reader allocates the matrix
    its header asks for before reading a row (a 2-line file can ask for terabytes)."""
    from gensim.models import KeyedVectors

    def bad(why: str) -> ConfigError:
        return ConfigError(param, str(path), f"is not a .vec text file: {why}; {_FIX}")

    zipped = _head(path, 2) == _GZIP_HEAD
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    with (gzip.open(path, "rb") if zipped else open(path, "rb")) as fh:
        head = fh.readline(256)
        try:
            count, dim = (int(x) for x in head.decode("utf-8").split())
        except (UnicodeDecodeError, ValueError):
            raise bad(f"its first line ({head[:40]!r}) is not '<number of words> <dimension>'") from None
        if not (1 <= count <= _INT32_MAX and 1 <= dim <= 1 << 16):
            raise bad(f"header '{count} {dim}' is out of range (words 1..{_INT32_MAX}, dimension 1..65536)")
        limit = 64 * (dim + 1) + 1024  # a line longer than this is no vector of ``dim`` numbers
        for lineno in range(2, count + 2):
            raw = fh.readline(limit)
            if not raw:
                raise bad(f"it ends after {len(words)} of the {count} words its header announces (truncated)")
            if len(raw) >= limit and not raw.endswith(b"\n"):
                raise bad(f"line {lineno} is longer than {limit} bytes")
            try:
                parts = raw.decode("utf-8").rstrip("\r\n").rstrip(" ").split(" ")
            except UnicodeDecodeError:
                raise bad(f"line {lineno} is not UTF-8") from None
            if len(parts) != dim + 1:
                raise bad(f"line {lineno} has {len(parts) - 1} numbers, the header says {dim}")
            try:
                row = np.array(parts[1:], dtype=np.float32)
            except ValueError:
                raise bad(f"line {lineno} holds something that is not a number") from None
            if not np.isfinite(row).all():
                raise bad(f"line {lineno} holds inf or nan")
            if parts[0] in seen or not parts[0]:
                raise bad(f"line {lineno}: word {parts[0]!r} is empty or appears twice")
            seen.add(parts[0])
            words.append(parts[0])
            rows.append(row)
        if fh.read(limit).strip():
            raise bad(f"it has more lines than the {count} words its header announces")
    kv = KeyedVectors(dim, dtype=np.float32)
    kv.add_vectors(words, np.stack(rows))
    log.warning("%s holds word vectors only: strings outside its vocabulary get zero rows "
                "(no character n-grams); use a .bin model to compose them", path)
    return StaticSpace(kv, None, low, str(path))


def _head(path: Path, n: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def _safe_vectors(folder: Path, meta: dict, param: str, low: bool) -> StaticSpace:
    """Vectors-only folder: ``vectors.safetensors`` (word rows, and n-gram rows when it has them)
    and ``words.json``, the format ``StaticSpace.save`` writes for a space without a model."""
    from gensim.models import KeyedVectors
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from .facebook_bin import FacebookVectors

    def bad(why: str) -> ConfigError:
        return ConfigError(param, str(folder), f"{why}; {_FIX}")

    try:
        arrays = load_file(str(folder / SAFE_VECTORS_FILE))
        words = json.loads((folder / WORDS_FILE).read_text(encoding="utf-8"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise bad(f"{SAFE_VECTORS_FILE} or {WORDS_FILE} cannot be read ({exc})") from exc
    vocab, ngrams = arrays.get("vectors_vocab"), arrays.get("vectors_ngrams")
    if (vocab is None or vocab.ndim != 2 or vocab.dtype != np.float32 or not isinstance(words, list)
            or not all(isinstance(w, str) for w in words) or len(words) != vocab.shape[0]
            or len(set(words)) != len(words)):
        raise bad(f"{SAFE_VECTORS_FILE} needs a float32 'vectors_vocab' matrix with one row per word of "
                  f"{WORDS_FILE} (a list of distinct strings)")
    if ngrams is None:
        kv = KeyedVectors(vocab.shape[1], dtype=np.float32)
        kv.add_vectors(words, vocab)
        return StaticSpace(kv, None, low, str(folder))
    min_n, max_n = meta.get("min_n"), meta.get("max_n")
    if (ngrams.ndim != 2 or ngrams.dtype != np.float32 or ngrams.shape[1] != vocab.shape[1]
            or not all(isinstance(v, int) and 0 <= v <= MAX_NGRAM for v in (min_n, max_n))):
        raise bad(f"its 'vectors_ngrams' matrix or {META_FILE}'s min_n/max_n (0..{MAX_NGRAM}) are malformed")
    matrix = np.concatenate([vocab, ngrams])
    return StaticSpace(FacebookVectors(vocab.shape[1], min_n, max_n, ngrams.shape[0], words, matrix), None, low,
                       str(folder))


def _folder(path: Path, lowercase: bool | None, param: str, trainable: bool, allow_pickle: bool) -> StaticSpace:
    meta_path = path / META_FILE
    meta: object = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(param, str(path), f"its {META_FILE} is not readable JSON ({exc}); {_FIX}") from exc
    if not isinstance(meta, dict):
        raise ConfigError(param, str(path), f"its {META_FILE} is not a JSON object; {_FIX}")
    low = bool(meta.get("lowercase", False)) if lowercase is None else lowercase
    if (path / FB_MODEL_FILE).is_file():
        return _bin(path / FB_MODEL_FILE, param, trainable, low, str(path))
    if (path / SAFE_VECTORS_FILE).is_file():
        return _safe_vectors(path, meta, param, low)
    for legacy in (MODEL_FILE, VECTORS_FILE):  # folders written before the safe format
        if (path / legacy).is_file():
            if not allow_pickle:
                raise _pickle_refused(param, path / legacy)
            return _unpickle(path / legacy, param, low, str(path))
    raise ConfigError(param, str(path), f"this folder has no {FB_MODEL_FILE} or {SAFE_VECTORS_FILE}; {_FIX}")


def load_static(path: str | os.PathLike, lowercase: bool | None = None, param: str = "--model",
                trainable: bool = False, allow_pickle: bool = False) -> StaticSpace:
    """A folder saved by ``StaticSpace.save``, a Facebook ``.bin``, or a ``.vec`` text file (vectors
    only: unseen strings get a zero row, flagged in ``lookup``); the kind is told by the file's first
    bytes, not its name.

    A ``.bin`` is checked field by field and memory-mapped for look-ups (fast, not trainable) unless
    ``trainable`` asks for the full model, which continuing training needs. gensim's own pickled format
    (``model.gensim``, ``vectors.kv``) is refused unless ``allow_pickle``: unpickling runs code."""
    path = Path(path)
    if path.is_dir():
        return _folder(path, lowercase, param, trainable, allow_pickle)
    if not path.is_file():
        raise ConfigError(param, str(path), f"no such file or folder; {_FIX}")
    low = bool(lowercase)
    try:
        if path.stat().st_size == 0:
            raise ConfigError(param, str(path), f"is an empty file; {_FIX}")
        head = _head(path, 4)
        if head[:2] in _PICKLE_HEAD:  # whatever its name says
            if not allow_pickle:
                raise _pickle_refused(param, path)
            return _unpickle(path, param, low, str(path))
        if head == struct.pack("@i", MAGIC) or path.name.lower().endswith(".bin"):
            return _bin(path, param, trainable, low, str(path))
        return _vec(path, param, low)
    except (OSError, EOFError) as exc:
        raise ConfigError(param, str(path), f"could not be read ({exc}); {_FIX}") from exc
