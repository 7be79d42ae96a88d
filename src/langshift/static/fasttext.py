"""Static (fastText) embeddings: train, continue training, load, look up — a thin layer over gensim.

MIGRATE (seed 000, appendix A) continues fastText CBOW vectors (dim 300, char 5-grams, window 5,
10 negatives) for one epoch at alpha 0.025 on code-switched text; ``StaticConfig`` carries those
defaults. ``StaticSpace`` is what the embedding-transfer methods read: ``.vectors(strings)`` gives a
float32 row for any string, composed from character n-grams when the string is not a vocabulary word.

Loading (Facebook .bin, .vec, the folders ``save`` writes, legacy pickles on request) is in ``load.py``.

Reproducibility: gensim's multi-threaded training interleaves updates nondeterministically, so
identical vectors need ``workers=1`` together with a fixed ``seed`` (tested); ``workers>1`` is faster
and gives statistically equivalent, not identical, vectors.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import StageConfig, check_range, opt
from ..errors import ConfigError, LangshiftError
from ..files import atomic_dir
from .ngrams import mean_rows, ngram_buckets

log = logging.getLogger(__name__)

FB_MODEL_FILE = "model.bin"              # full fastText model, Facebook format (trainable)
SAFE_VECTORS_FILE = "vectors.safetensors"  # vectors only (e.g. from a .vec file: not trainable)
WORDS_FILE = "words.json"                 # the words of SAFE_VECTORS_FILE's rows, in order
META_FILE = "static.json"


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
        super().validate()
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


# 3. Training -----------------------------------------------------------------------------------

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
