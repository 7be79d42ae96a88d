"""Static (fastText) embeddings: train, continue training, load, look up — a thin layer over gensim.

MIGRATE (seed 000, appendix A) continues fastText CBOW vectors (dim 300, char 5-grams, window 5,
10 negatives) for one epoch at alpha 0.025 on code-switched text; ``StaticConfig`` carries those
defaults. ``StaticSpace`` is what the embedding-transfer methods read: ``.vectors(strings)`` gives a
float32 row for any string, composed from character n-grams when the string is not a vocabulary word.

Reproducibility: gensim's multi-threaded training interleaves updates nondeterministically, so
identical vectors need ``workers=1`` together with a fixed ``seed`` (tested); ``workers>1`` is faster
and gives statistically equivalent, not identical, vectors.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import StageConfig, check_range, opt
from ..errors import ConfigError, LangshiftError
from ..files import atomic_dir
from .facebook_bin import MAGIC
from .ngrams import MAX_NGRAM, mean_rows, ngram_buckets

log = logging.getLogger(__name__)

FB_MODEL_FILE = "model.bin"              # full fastText model, Facebook format (trainable)
SAFE_VECTORS_FILE = "vectors.safetensors"  # vectors only (e.g. from a .vec file: not trainable)
WORDS_FILE = "words.json"                 # the words of SAFE_VECTORS_FILE's rows, in order
META_FILE = "static.json"
MODEL_FILE = "model.gensim"      # legacy gensim pickle (trainable): read only with allow_pickle
VECTORS_FILE = "vectors.kv"      # legacy gensim pickle (vectors only): read only with allow_pickle
_INT32_MAX = 2**31 - 1


@dataclass
class StaticConfig(StageConfig):
    dim: int = opt(300, "vector size (MIGRATE / fastText cc.* vectors: 300)")
    sg: bool = opt(False, "skip-gram instead of CBOW (MIGRATE: CBOW)")
    minn: int = opt(5, "shortest character n-gram (MIGRATE / cc.*: 5)")
    maxn: int = opt(5, "longest character n-gram (MIGRATE / cc.*: 5)")
    window: int = opt(5, "context window in words on each side")
    negative: int = opt(10, "negative samples per positive")
    epochs: int = opt(1, "passes over the text (MIGRATE continues for 1 epoch)")
    alpha: float = opt(0.025, "initial learning rate, decaying linearly to min_alpha")
    min_alpha: float = opt(0.0001, "final learning rate")
    min_count: int = opt(2, "drop words seen fewer times than this. 2 (not fastText's 5) so that the translated "
                            "nouns of a small code-switched corpus still get their own vectors while hapax "
                            "typos do not; rare words still get vectors from their n-grams")
    bucket: int = opt(200_000, "hash buckets for character n-grams (cc.* models use 2,000,000 = 2.4 GB at dim "
                               "300; 200,000 keeps a trained model near 240 MB)")
    sample: float = opt(0.001, "down-sampling threshold for frequent words")
    lowercase: bool = opt(False, "lower-case words before training and look-up")
    workers: int = opt(2, "training threads; only workers=1 with a fixed seed gives identical vectors")
    seed: int = opt(0, "random seed for initial vectors and sampling")

    def validate(self) -> None:
        for name in ("dim", "window", "negative", "epochs", "min_count", "workers", "bucket"):
            check_range(name, getattr(self, name), 1)
        check_range("minn", self.minn, 1)
        if self.maxn < self.minn:
            raise ConfigError("maxn", self.maxn, f"must be >= minn ({self.minn})")
        check_range("alpha", self.alpha, 0, 1, lo_open=True)
        check_range("min_alpha", self.min_alpha, 0, self.alpha)
        check_range("sample", self.sample, 0, 1)


# 1. Tokenising for static training -------------------------------------------------------------

def tokenise(text: str, lowercase: bool = False) -> list[str]:
    """Words of ``text`` without punctuation tokens, so "rey!" and "rey;" train one vector "rey"."""
    from ..text.units import words

    out = [w.text for w in words(text) if any(ch.isalnum() for ch in w.text)]
    return [w.lower() for w in out] if lowercase else out


def tokenise_lines(lines: Iterable[str], lowercase: bool = False) -> list[list[str]]:
    return [toks for toks in (tokenise(line, lowercase) for line in lines) if toks]


# 2. The space ----------------------------------------------------------------------------------

class StaticSpace:
    """Static word vectors with n-gram composition for strings outside the vocabulary.

    Wraps a gensim ``FastText`` model (trainable, n-grams), or only its keyed vectors; a ``.vec``
    text file gives plain ``KeyedVectors`` — no n-grams, so unknown strings get a zero row, flagged
    by ``missing``.
    """

    def __init__(self, wv, model=None, lowercase: bool = False, source: str = ""):
        self.wv = wv
        self.model = model
        self.lowercase = lowercase
        self.source = source

    @property
    def dim(self) -> int:
        return int(self.wv.vector_size)

    @property
    def has_ngrams(self) -> bool:
        return getattr(self.wv, "bucket", 0) > 0 and hasattr(self.wv, "vectors_ngrams")

    def __len__(self) -> int:
        return len(self.wv.key_to_index)

    def _key(self, s: str) -> str:
        return s.lower() if self.lowercase else s

    def known(self, word: str) -> bool:
        """True when ``word`` is a vocabulary word (has its own trained vector)."""
        return self._key(word) in self.wv.key_to_index

    def missing(self, strings: Sequence[str]) -> np.ndarray:
        """Boolean mask: True where a string has no vector at all (not a word, and no character n-gram)."""
        return self.lookup(strings)[1]

    def vectors(self, strings: Sequence[str]) -> np.ndarray:
        """float32 (n, dim): vocabulary rows, else the mean of the string's n-gram vectors, else zeros."""
        return self.lookup(strings)[0]

    def lookup(self, strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(vectors float32 (n, dim), missing bool (n,)) in one pass."""
        keys = [self._key(s) for s in strings]
        out = np.zeros((len(keys), self.dim), dtype=np.float32)
        missing = np.zeros(len(keys), dtype=bool)
        index = self.wv.key_to_index
        rows = np.array([index.get(k, -1) for k in keys], dtype=np.int64)
        hit = rows >= 0
        if hit.any():  # a memory-mapped .bin composes only the words asked for (facebook_bin)
            compose = getattr(self.wv, "word_vectors", None)
            out[hit] = compose(rows[hit]) if compose is not None else self.wv.vectors[rows[hit]]
        miss = np.flatnonzero(~hit)
        if len(miss) and self.has_ngrams:
            owner, buckets = ngram_buckets([keys[i] for i in miss], self.wv.min_n, self.wv.max_n, self.wv.bucket)
            out[miss] = mean_rows(self.wv.vectors_ngrams, owner, buckets, len(miss))
            missing[miss] = np.bincount(owner, minlength=len(miss)) == 0
        else:
            missing[miss] = True
        return out, missing

    def most_similar(self, word: str, topn: int = 10) -> list[tuple[str, float]]:
        return self._gensim_wv().most_similar(self._key(word), topn=topn)

    def _gensim_wv(self):
        """gensim keyed vectors (a memory-mapped .bin is converted on first use)."""
        if hasattr(self.wv, "to_gensim"):
            self.wv = self.wv.to_gensim()
        return self.wv

    def save(self, out: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the space to folder ``out`` in one rename (never half-written), in formats that load
        without unpickling: a trainable model as a Facebook ``model.bin`` (gensim writes it; the source
        ``.bin`` is copied when the space is one memory-mapped), vectors only as safetensors + words."""
        with atomic_dir(out, overwrite=overwrite) as tmp:
            source_bin = getattr(self.wv, "path", None)
            trainable = self.model is not None or source_bin is not None
            meta = {"dim": self.dim, "words": len(self), "ngrams": self.has_ngrams, "trainable": trainable,
                    "lowercase": self.lowercase, "source": self.source}
            if self.model is not None:
                from gensim.models.fasttext import save_facebook_model

                save_facebook_model(self.model, str(tmp / FB_MODEL_FILE))
            elif source_bin is not None:
                shutil.copyfile(source_bin, tmp / FB_MODEL_FILE)
            else:
                from safetensors.numpy import save_file

                wv = self.wv
                arrays = {"vectors_vocab": np.ascontiguousarray(getattr(wv, "vectors_vocab", wv.vectors), np.float32)}
                if self.has_ngrams:
                    arrays["vectors_ngrams"] = np.ascontiguousarray(wv.vectors_ngrams, np.float32)
                    meta.update(min_n=int(wv.min_n), max_n=int(wv.max_n))
                save_file(arrays, str(tmp / SAFE_VECTORS_FILE))
                (tmp / WORDS_FILE).write_text(json.dumps(list(wv.index_to_key), ensure_ascii=False), encoding="utf-8")
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return Path(out)


# 3. Loading ------------------------------------------------------------------------------------
# Nothing here unpickles unless asked: gensim's own ``.save`` format is a pickle, and unpickling a file
# runs whatever code it carries. Facebook .bin, .vec text and safetensors are read as data.

_PICKLE_HEAD = tuple(bytes([0x80, proto]) for proto in range(2, 6))  # pickle protocols 2-5 (gensim: 4)
_GZIP_HEAD = b"\x1f\x8b"
_FIX = "give a Facebook fastText .bin, a .vec text file or a folder written by `langshift static train`"


def _pickle_refused(param: str, path: Path) -> ConfigError:
    return ConfigError(param, str(path), "is a gensim/Python pickle, and unpickling a file runs any code it "
                                         "carries, so it is not loaded by default. If you trust its origin, add "
                                         "--allow-pickle (allow_pickle: true) once, or convert it to the safe "
                                         "format with `langshift static convert --model FILE --out DIR "
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


# 4. Training -----------------------------------------------------------------------------------

def _as_corpus(sentences: Iterable[list[str]], lowercase: bool) -> list[list[str]]:
    # gensim reads the corpus twice (vocabulary, then training): materialise a one-shot iterator.
    corpus: list[list[str]] = []
    for s in sentences:
        if isinstance(s, str):
            raise ConfigError("sentences", s[:60], "give lists of words, not strings (tokenise_lines does it)")
        if s:
            corpus.append([w.lower() for w in s] if lowercase else list(s))
    if not corpus:
        raise ConfigError("sentences", "[]", "no words to train on; give non-empty, tokenised text")
    return corpus


def _train(model, corpus: list[list[str]], cfg: StaticConfig, what: str) -> None:
    from gensim.models.callbacks import CallbackAny2Vec
    from tqdm.auto import tqdm

    class _Bar(CallbackAny2Vec):
        def __init__(self):
            self.bar = tqdm(total=cfg.epochs, desc=f"fastText {what}", unit="epoch")

        def on_epoch_end(self, model):
            self.bar.update()

        def on_train_end(self, model):
            self.bar.close()

    start = time.perf_counter()
    total_words = sum(len(s) for s in corpus)
    _, raw = model.train(corpus, total_examples=len(corpus), total_words=total_words, epochs=cfg.epochs,
                         start_alpha=cfg.alpha, end_alpha=cfg.min_alpha, callbacks=[_Bar()])
    seconds = max(time.perf_counter() - start, 1e-9)
    model.langshift_words_per_second = raw / seconds
    log.info("fastText %s: %d words x %d epoch(s) in %.1f s = %.0f words/s, vocabulary %d",
             what, total_words, cfg.epochs, seconds, raw / seconds, len(model.wv.key_to_index))


def train_static(sentences: Iterable[list[str]], cfg: StaticConfig | None = None) -> StaticSpace:
    """Train fastText vectors from scratch on tokenised sentences."""
    from gensim.models import FastText

    cfg = cfg or StaticConfig()
    corpus = _as_corpus(sentences, cfg.lowercase)
    model = FastText(vector_size=cfg.dim, sg=int(cfg.sg), min_n=cfg.minn, max_n=cfg.maxn, window=cfg.window,
                     negative=cfg.negative, min_count=cfg.min_count, bucket=cfg.bucket, sample=cfg.sample,
                     workers=cfg.workers, seed=cfg.seed, alpha=cfg.alpha, min_alpha=cfg.min_alpha)
    model.build_vocab(corpus)
    if not model.wv.key_to_index:
        raise ConfigError("min_count", cfg.min_count, "no word occurs that often in this text; lower min_count "
                                                      "or give more text")
    _train(model, corpus, cfg, "training")
    return StaticSpace(model.wv, model, cfg.lowercase, "trained")


def continue_static(space: StaticSpace, sentences: Iterable[list[str]], cfg: StaticConfig | None = None) -> StaticSpace:
    """Continue training ``space`` on new sentences (MIGRATE's step on code-switched text).

    The vocabulary grows by the new words (``min_count`` applies to them); old words keep their rows
    and move only as far as one pass of training takes them. ``space`` itself is changed in place and
    returned. Architecture fields (dim, n-grams, window, negative, sg, bucket) come from the model.
    """
    cfg = cfg or StaticConfig()
    if space.model is None:
        raise LangshiftError(f"{space.source or 'this space'} holds word vectors only (e.g. a .vec file) and cannot "
                             "be trained further; start from a Facebook .bin or a folder from `langshift static train`")
    model = space.model
    corpus = _as_corpus(sentences, space.lowercase)
    old = len(model.wv.key_to_index)
    model.min_count = cfg.min_count
    model.workers = cfg.workers
    model.build_vocab(corpus, update=True)
    log.info("fastText vocabulary %d -> %d words", old, len(model.wv.key_to_index))
    _train(model, corpus, cfg, "continued training")
    return StaticSpace(model.wv, model, space.lowercase, space.source)
