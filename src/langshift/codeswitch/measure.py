"""Measuring code-switching in a corpus (seed 003, §2): which sentences switch, and how.

SynCS §2 tags each sentence's language with fastText, calls a sentence in another language than its
document's sentence-level code-switching and one mixing both token-level, then separates annotation
(a translation beside its source, usually in parentheses) from replacement (standing alone) with
LaBSE / an LLM, and sets aside "unrelated" segments (a third language, noise). Offline, without those
models, this module decides the same categories from evidence it can show:

1. Sentences of each document (one per input line); parenthesised segments "( … )" cut out, so the
   text outside them and each segment get their own language.
2. Language of a span: ``langshift.text.langid`` (fastText lid.176) on sentences, outside texts and
   segments, in one batched call. Language of a word: wordfreq Zipf frequencies — a word belongs to a
   language when it is at least ``word_margin`` more frequent there than in each other of ``langs``
   (so "rey" is Spanish, "son" and "me" belong to neither).
3. The document language A = the most common sentence language among ``langs`` (for documents of
   fewer than ``min_doc_sentences`` sentences, e.g. one verse a line: the corpus's); B = any other of
   ``langs``.
4. Each sentence gets one label, the first that applies:
   - unrelated:  its text (or a segment) is confidently in a language outside ``langs``, or has no letters;
   - sent-annt:  a segment of at least ``sentence_words`` words in B beside A text — "Sentence. (Oración.)",
                 also when the splitter cut the segment into a sentence of its own after an A sentence;
   - sent-repl:  the sentence is in B (langid and most of its language-marked words) — standing alone;
   - token-annt: a shorter segment whose words are B beside A text — "word (palabra)";
   - token-repl: B words inside an A sentence, outside parentheses;
   - monolingual.
   With a translator (B→A) annotations are checked: the segment's translation must share a word with
   the ``window`` words before it (sentence level: with the sentence); an unconfirmed segment counts as
   replacement, since nothing beside it means the same.
``detect.py`` replaces steps 4's annotation/replacement decisions by the paper's models when asked (a
cross-lingual encoder at sentence level, an LLM with App. A.1's prompt at token level).
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..config import StageConfig, check_range, opt
from ..engine import EngineOptions
from ..errors import ConfigError
from .provenance import TYPES, split_document

LABELS = ("monolingual", *TYPES, "unrelated")
_SEGMENT = re.compile(r"\(([^()]*)\)")
_WORD = re.compile(r"[^\W\d_]+(?:['’\-‐][^\W\d_]+)*")


@dataclass
class MeasureOptions(EngineOptions):
    langs: list[str] = opt(["en", "es"], "the languages expected to mix (ISO 639-1 codes: en es, or en,es)")
    min_prob: float = opt(0.6, "language-ID confidence needed to call a span a language")
    word_margin: float = opt(1.0, "Zipf margin by which a word must be more frequent in one language")
    sentence_words: int = opt(4, "a parenthesised segment of at least this many words is a sentence")
    window: int = opt(4, "words before a segment searched for the word it annotates")
    examples: int = opt(3, "examples kept per label")
    min_doc_sentences: int = opt(3, "a document with fewer language-identified sentences takes the corpus's "
                                    "majority language as its own")
    batch_size: int = opt(256, "documents per group on the engine (one language-ID call each)")

    def validate(self) -> None:
        super().validate()
        if isinstance(self.langs, str):
            self.langs = [self.langs]
        if len(self.langs) == 1:  # --langs en,es as before, --langs en es as a list
            self.langs = [x.strip() for x in self.langs[0].split(",") if x.strip()]
        check_range("batch_size", self.batch_size, 1)
        if len(self.langs) < 2 or len(set(self.langs)) != len(self.langs):
            raise ConfigError("langs", self.langs, "give at least two different languages, e.g. en,es")
        check_range("min_prob", self.min_prob, 0, 1)
        check_range("sentence_words", self.sentence_words, 1)

    def check_langs(self) -> None:
        """Each of ``langs`` a language code the language identifier knows (the front doors call it)."""
        from ..text.langid import check_languages

        for code in self.langs:
            check_languages({"--langs": code})


@dataclass
class BackTranslation(StageConfig):
    """Checking annotations (measure, score, ablate): a translator from the second of ``langs`` to the first."""

    translator: str | None = opt(None, "check annotations by translating them back (e.g. apertium)")

    def back_translator(self):
        if not self.translator:
            return None
        from ..translate import get_translator

        # annotations are in another language than the document: translate them back into the first language
        return get_translator(self.translator, self.langs[1], self.langs[0])


# 1. Word-level language ----------------------------------------------------------------------------

@functools.lru_cache(maxsize=200_000)
def _word_lang(word: str, langs: tuple[str, ...], margin: float) -> str | None:
    from wordfreq import zipf_frequency

    z = sorted(((zipf_frequency(word, lang), lang) for lang in langs), reverse=True)
    return z[0][1] if z[0][0] >= 1.0 and z[0][0] - z[1][0] >= margin else None


def word_languages(text: str, langs: Sequence[str], margin: float) -> list[str | None]:
    """Language of each word; one-letter words ("O", "a", "y") and hyphenated compounds (mostly names:
    "Beth-peor") get none."""
    return [None if len(w) < 2 or "-" in w or "‐" in w else _word_lang(w.lower(), tuple(langs), margin)
            for w in _WORD.findall(text)]


# 2. One sentence --------------------------------------------------------------------------------

@dataclass
class Parts:
    text: str
    outside: str
    segments: list[tuple[int, str]]     # (start offset, content) of each "( … )"


def parts(sentence: str) -> Parts:
    segs = [(m.start(), m.group(1)) for m in _SEGMENT.finditer(sentence) if _WORD.search(m.group(1))]
    outside = _SEGMENT.sub(" ", sentence)
    return Parts(sentence, " ".join(outside.split()), segs)


def _span_lang(text: str, lid: tuple[str, float], cfg: MeasureOptions) -> str | None:
    """The span's language: confident langid for spans of three words or more (also a third language);
    otherwise the majority of its language-marked words (langid is unreliable on one or two words)."""
    lang, prob = lid
    if len(_WORD.findall(text)) >= 3 and prob >= cfg.min_prob:
        return lang
    marks = Counter(x for x in word_languages(text, cfg.langs, cfg.word_margin) if x)
    return marks.most_common(1)[0][0] if marks else None


def classify(p: Parts, lid: dict[str, tuple[str, float]], doc_lang: str, prev_lang: str | None,
             cfg: MeasureOptions, confirms: Callable[[str, str], bool] | None) -> str:
    if not _WORD.search(p.text):
        return "unrelated"
    out_lang = _span_lang(p.outside, lid[p.outside], cfg) if p.outside else None
    seg_langs = [(at, s, _span_lang(s, lid[s], cfg)) for at, s in p.segments]
    if any(lang is not None and lang not in cfg.langs for lang in [out_lang] + [x for _, _, x in seg_langs]):
        return "unrelated"
    # a segment that the splitter made a sentence of its own: it annotates the previous sentence
    if not p.outside and seg_langs:
        lang = seg_langs[0][2]
        if lang not in (None, doc_lang) and prev_lang == doc_lang:
            return "sent-annt"
        return "monolingual" if lang in (None, doc_lang) else "sent-repl"
    words = word_languages(p.outside, cfg.langs, cfg.word_margin)
    foreign = [w for w in words if w is not None and w != doc_lang]
    marked = [w for w in words if w is not None]
    if out_lang not in (None, doc_lang) and len(foreign) * 2 >= max(len(marked), 1):
        return "sent-repl"
    for at, seg, lang in seg_langs:
        if lang in (None, doc_lang):
            continue
        n_words = len(_WORD.findall(seg))
        before = p.text[:at]
        if n_words >= cfg.sentence_words:
            if confirms is None or confirms(seg, before):
                return "sent-annt"
            return "sent-repl"
        context = " ".join(_WORD.findall(before)[-cfg.window:])
        if confirms is None or confirms(seg, context):
            return "token-annt"
        return "token-repl"
    return "token-repl" if foreign else "monolingual"


# 3. A corpus ------------------------------------------------------------------------------------

def _confirmer(translator) -> Callable[[str, str], bool] | None:
    """(segment in B, text in A before it) → True when the segment's translation shares a word with it."""
    if translator is None:
        return None
    memo: dict[str, set[str]] = {}

    def confirms(seg: str, context: str) -> bool:
        if seg not in memo:
            (tr,) = translator.translate_sentences([seg])
            memo[seg] = {w.lower() for w in _WORD.findall(tr or "")}
        return bool(memo[seg] & {w.lower() for w in _WORD.findall(context)})

    return confirms


LABELLED = {"doc": "int64", "sentence": "int32", "text": "string", "lang": "string", "doc_lang": "string",
            "labels": ["string"], "segment": ["string"], "context": ["string"]}
CONFIRMED = {"sent-annt": "sent-repl", "token-annt": "token-repl"}   # an annotation not confirmed: replacement


class Label:
    """Per-group engine step: each sentence of a group of documents with its language and label.

    A document too short for a majority of its own takes the corpus's language, known only once every group
    is done: it gets one label per language of ``langs``. With a translator, the annotation to confirm is
    left pending (segment, context) for the main process, which translates each distinct segment once."""

    def __init__(self, cfg: MeasureOptions, detect: Callable | None, check: bool):
        self.cfg, self.detect, self.check = cfg, detect, check

    def __call__(self, batch: dict) -> dict:
        cfg = self.cfg
        detect = self.detect
        if detect is None:
            from ..text.langid import detect
        out: dict[str, list] = {k: [] for k in LABELLED}
        for first, docs in zip(batch["first"], batch["docs"], strict=True):
            pieces = [[parts(s) for _, s in split_document(d, cfg.langs[0])] for d in docs]
            spans = list(dict.fromkeys(x for ps in pieces for p in ps for x in (p.outside, *(s for _, s in p.segments))
                                       if x))
            lid = dict(zip(spans, detect(spans), strict=True)) if spans else {}
            for d, ps in enumerate(pieces, start=first):
                langs = [_span_lang(p.outside, lid[p.outside], cfg) if p.outside else None for p in ps]
                counted = Counter(x for x in langs if x in cfg.langs)
                # a document's own majority needs a few sentences; shorter ones (a verse, a line) take the corpus's
                own = counted.most_common(1)[0][0] if sum(counted.values()) >= cfg.min_doc_sentences else None
                for i, p in enumerate(ps):
                    labels, segments, contexts = [], [], []
                    for doc_lang in [own] if own else cfg.langs:
                        asked: list[tuple[str, str]] = []
                        confirms = (lambda seg, ctx, a=asked: a.append((seg, ctx)) or True) if self.check else None
                        labels.append(classify(p, lid, doc_lang, langs[i - 1] if i else None, cfg, confirms))
                        segments.append(asked[0][0] if asked else None)
                        contexts.append(asked[0][1] if asked else None)
                    for k, v in (("doc", d), ("sentence", i), ("text", p.text), ("lang", langs[i]), ("doc_lang", own),
                                 ("labels", labels), ("segment", segments), ("context", contexts)):
                        out[k].append(v)
        return out


def labelled(documents, cfg: MeasureOptions, detect: Callable | None, check: bool, work: str | os.PathLike):
    """The per-group step over ``documents`` (strings or a corpus dataset) on the engine: a dataset of rows."""
    from .. import engine

    corpus = engine.as_corpus(documents)
    if len(corpus) == 0:
        return None
    groups = engine.group_documents(corpus, cfg.batch_size, work)
    return engine.run_groups(groups, Label(cfg, detect, check), engine.features(LABELLED), cfg, work, "labelled",
                             "measuring")


def iter_rows(rows, cfg: MeasureOptions, translator=None):
    """{doc, sentence, text, label, doc_lang, lang} per sentence, in order, from the engine's rows."""
    if rows is None:
        return
    corpus: Counter = Counter()
    for batch in rows.select_columns(["lang"]).iter(batch_size=4096):
        corpus.update(x for x in batch["lang"] if x in cfg.langs)
    corpus_lang = corpus.most_common(1)[0][0] if corpus else cfg.langs[0]
    confirms = _confirmer(translator)
    for batch in rows.iter(batch_size=1024):
        for d, i, text, lang, own, labels, segs, ctxs in zip(*(batch[k] for k in LABELLED), strict=True):
            k = 0 if own else cfg.langs.index(corpus_lang)
            label = labels[k]
            if segs[k] is not None and confirms is not None and not confirms(segs[k], ctxs[k]):
                label = CONFIRMED[label]
            yield {"doc": d, "sentence": i, "text": text, "label": label, "doc_lang": own or corpus_lang,
                   "lang": lang}


def measure(documents, cfg: MeasureOptions, detect: Callable | None = None, translator=None,
            work: str | os.PathLike | None = None) -> tuple[dict, list[dict]]:
    """(report with counts, shares and examples per label, one {doc, sentence, text, label, lang} per sentence).

    ``documents``: strings or a corpus dataset; the classification runs on the engine (``cfg.num_proc``
    workers, or datatrove), the report does not depend on it."""
    if work is None:
        with tempfile.TemporaryDirectory(prefix="langshift-measure.") as tmp:
            return measure(documents, cfg, detect, translator, tmp)
    rows = list(iter_rows(labelled(documents, cfg, detect, translator is not None, work), cfg, translator))
    return report(rows, cfg), rows


def report(rows: Iterable[dict], cfg: MeasureOptions) -> dict:
    """Counts, shares and examples per label, in one pass over the rows (a stream or a list)."""
    counts: Counter = Counter()
    docs, switched_docs = set(), set()
    examples: dict[str, list[str]] = {}
    for r in rows:
        counts[r["label"]] += 1
        docs.add(r["doc"])
        if r["label"] != "monolingual":
            switched_docs.add(r["doc"])
            if len(examples.setdefault(r["label"], [])) < cfg.examples:
                examples[r["label"]].append(r["text"])
    n = sum(counts.values())
    switched = n - counts["monolingual"]
    return {
        "documents": len(docs), "sentences": n, "langs": cfg.langs,
        "counts": {k: counts.get(k, 0) for k in LABELS},
        "shares": {k: round(counts.get(k, 0) / n, 6) if n else 0.0 for k in LABELS},
        "code_switched": switched,
        "code_switched_shares": {k: round(counts.get(k, 0) / switched, 6) if switched else 0.0
                                 for k in LABELS if k != "monolingual"},
        "documents_with_code_switching": len(switched_docs),
        "examples": examples,
    }
