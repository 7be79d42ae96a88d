"""Shared inputs of the transfer benchmarks, made once under bench/.work/ (git-ignored).

Split: every 31st Spanish Bible verse is held out (~1,000 verses) for bits per byte; the target
tokenizer and every fastText space see only the other verses plus Debian's Spanish fortunes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

WORK = Path(__file__).parent / ".work"
HELD_OUT_EVERY = 31


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(path)
    return path


def spanish_split() -> tuple[Path, Path]:
    """(training text file, held-out verses file)."""
    from langshift.resources import bible_verses, fortunes

    verses = list(bible_verses("es").values())
    held = [v for i, v in enumerate(verses) if i % HELD_OUT_EVERY == 0]
    train = [v for i, v in enumerate(verses) if i % HELD_OUT_EVERY != 0] + fortunes("es")
    return _write(WORK / "es.train.txt", train), _write(WORK / "es.heldout.txt", held)


def english_text() -> Path:
    from langshift.resources import bible_verses

    return _write(WORK / "en.train.txt", list(bible_verses("en").values()))


def target_tokenizer(vocab_size: int) -> Path:
    """A byte-level BPE of ``vocab_size`` trained on the Spanish training text, keeping SmolLM2's specials."""
    from langshift.models import load_tokenizer
    from langshift.resources import BUILTIN_MODEL
    from langshift.vocab.build import save_tokenizer
    from langshift.vocab.train import train_tokenizer

    out = WORK / f"tok-es-bpe{vocab_size}"
    if not (out / "tokenizer.json").is_file():
        train_file, _ = spanish_split()
        tok = train_tokenizer([train_file], kind="bpe", vocab_size=vocab_size,
                              base_tokenizer=load_tokenizer(BUILTIN_MODEL), show_progress=False)
        save_tokenizer(tok, out, overwrite=True)
    return out


def _fasttext_bin(out: Path, lines: list[str], dim: int, epochs: int, min_count: int) -> tuple[Path, float]:
    """A CBOW fastText .bin (``fasttext`` package, 10 negatives) on whitespace-split ``lines``, made once;
    returns (path, seconds to write the training file and train)."""
    import fasttext

    meta = out.with_suffix(".json")
    if out.is_file() and meta.is_file():
        return out, json.loads(meta.read_text())["seconds"]
    start = time.perf_counter()
    corpus = _write(out.with_suffix(".txt"), lines)
    model = fasttext.train_unsupervised(str(corpus), model="cbow", dim=dim, epoch=epochs, neg=10,
                                        minCount=min_count, thread=2, verbose=0)
    seconds = time.perf_counter() - start
    model.save_model(str(out))
    meta.write_text(json.dumps({"seconds": seconds}))
    return out, seconds


def fasttext_native(tokenizer_dir: Path, dim: int = 300, epochs: int = 3, min_count: int = 10) -> tuple[Path, float]:
    """A fastText .bin trained on the text tokenised into the target tokenizer's native token strings,
    exactly as deepfocus trains its own. Returns (path, seconds)."""
    from transformers import AutoTokenizer

    out = WORK / f"ft-native-{tokenizer_dir.name}-d{dim}-e{epochs}-m{min_count}.bin"
    train_file, _ = spanish_split()
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    lines = [] if out.is_file() else train_file.read_text(encoding="utf-8").splitlines()
    return _fasttext_bin(out, [" ".join(tok.tokenize(x)) for x in lines], dim, epochs, min_count)


def fasttext_words(text_file: Path, name: str, dim: int = 300, epochs: int = 3, min_count: int = 3
                   ) -> tuple[Path, float]:
    """A word-level fastText .bin (``fasttext`` package) on ``text_file`` split into words, for WECHSEL."""
    from langshift.static.fasttext import tokenise

    out = WORK / f"ft-words-{name}-d{dim}-e{epochs}.bin"
    lines = [] if out.is_file() else text_file.read_text(encoding="utf-8").splitlines()
    return _fasttext_bin(out, [" ".join(tokenise(x)) for x in lines], dim, epochs, min_count)


def dictionary_tsv() -> Path:
    """English→Spanish word pairs from Debian's FreeDict (most frequent sense), one 'en<TAB>es' a line."""
    from langshift.translate.dictionary import DictionaryTranslator

    out = WORK / "en-es.dictionary.tsv"
    if not out.is_file():
        tr = DictionaryTranslator("en", "es")
        words = sorted(tr.entries)
        pairs = [(w, t) for w, t in zip(words, tr.translate_words(words), strict=True)
                 if t and " " not in w and " " not in t]
        _write(out, [f"{a}\t{b}" for a, b in pairs])
    return out
