"""Part-of-speech taggers chosen by name; every tagger answers in Penn Treebank tags.

MIGRATE code-switches nouns, i.e. words tagged NN, NNS, NNP or NNPS (its footnote 1): ``is_noun``.
Taggers declare the languages they serve; asking one for another language is an error. A tag a
backend cannot decide (an unknown word to apertium) comes back as ``XX``, which is not a noun.

- ``hanta``: HanTa's English model (CLAWS5 tags, mapped to Penn). Pure Python, ~3-5k words/s.
- ``apertium``: the analyser + HMM tagger of an installed apertium pair whose source is the language;
  all sentences go through one subprocess (null-flush mode), its tags are mapped to Penn.
- ``spacy``: any installed spaCy pipeline (``model=``); its ``tag_`` (Penn for English pipelines).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar

from ..errors import ConfigError
from ..optional import require
from ..registry import Registry

TAGGERS: Registry[type[Tagger]] = Registry("tagger", modules=[__name__])
NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
UNKNOWN = "XX"


def is_noun(tag: str) -> bool:
    """True for the Penn noun tags NN, NNS, NNP, NNPS (MIGRATE footnote 1)."""
    return tag in NOUN_TAGS


class Tagger:
    """Tags pre-split words with Penn tags; subclasses implement ``tag_many``."""

    name: ClassVar[str] = ""
    languages: tuple[str, ...] = ("en",)

    def __init__(self, lang: str = "en"):
        if lang not in self.languages:
            raise ConfigError("lang", lang, f"the {self.name!r} tagger serves {', '.join(self.languages)}; "
                                            f"choose another tagger for {lang!r}")
        self.lang = lang

    def tag(self, words: Sequence[str]) -> list[str]:
        """One Penn tag per word of one sentence."""
        return self.tag_many([list(words)])[0]

    def tag_many(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        raise NotImplementedError

    def close(self) -> None:
        """Stop any subprocess the tagger keeps between calls (none by default)."""


def get_tagger(name: str, lang: str = "en", **options: Any) -> Tagger:
    cls = TAGGERS.get(name, "--tagger")
    return cls(lang=lang, **options)


# --- hanta -----------------------------------------------------------------------------------------

# CLAWS5 (BNC) → Penn; verb tags V[BDHV][BDGINZ] follow one pattern and are added below
_CLAWS_TO_PENN = {
    "AJ0": "JJ", "AJC": "JJR", "AJS": "JJS", "AT0": "DT", "AV0": "RB", "AVP": "RP", "AVQ": "WRB",
    "CJC": "CC", "CJS": "IN", "CJT": "IN", "CRD": "CD", "DPS": "PRP$", "DT0": "DT", "DTQ": "WDT",
    "EX0": "EX", "ITJ": "UH", "NN0": "NN", "NN1": "NN", "NN2": "NNS", "NP0": "NNP", "ORD": "JJ",
    "PNI": "NN", "PNP": "PRP", "PNQ": "WP", "PNX": "PRP", "POS": "POS", "PRF": "IN", "PRP": "IN",
    "PUL": "-LRB-", "PUR": "-RRB-", "PUQ": "''", "TO0": "TO", "VM0": "MD", "XX0": "RB", "ZZ0": "NN",
    "UNC": UNKNOWN, "UNKNOWN": UNKNOWN,
    **{f"V{v}{f}": p for v in "BDHV" for f, p in
       {"B": "VBP", "D": "VBD", "G": "VBG", "I": "VB", "N": "VBN", "Z": "VBZ"}.items()},
}
_PUNCT = {".": ".", "!": ".", "?": ".", ",": ",", ";": ":", ":": ":", "-": ":", "(": "-LRB-", ")": "-RRB-"}


def claws_to_penn(tag: str, word: str) -> str:
    if word.lower() == "to" and tag in ("PRP", "TO0"):
        return "TO"  # Penn tags every "to" TO
    if tag == "PUN":
        return _PUNCT.get(word, ":")
    return _CLAWS_TO_PENN.get(tag, UNKNOWN)


@TAGGERS.register("hanta")
class HantaTagger(Tagger):
    """HanTa (PyPI hanta): English model shipped in the package, CLAWS5 tags mapped to Penn."""

    name = "hanta"
    languages = ("en",)

    def __init__(self, lang: str = "en"):
        super().__init__(lang)
        hanover = require("HanTa.HanoverTagger", "pip install hanta==1.2.1", "the hanta tagger")
        self._tagger = hanover.HanoverTagger("morphmodel_en.pgz")

    def tag_many(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        out = []
        for words in sentences:
            words = list(words)
            tagged = self._tagger.tag_sent(words, taglevel=1) if words else []
            out.append([claws_to_penn(t[-1], w) for w, t in zip(words, tagged, strict=True)])
        return out


# --- apertium --------------------------------------------------------------------------------------

def apertium_to_penn(lemma: str, tags: list[str]) -> str:
    """Map an apertium reading (``book`` + ``[n, pl]``) to a Penn tag."""
    if not tags:
        return UNKNOWN
    cat, rest = tags[0], set(tags[1:])
    plural = "pl" in rest
    if cat == "n":
        return "NNS" if plural else "NN"
    if cat == "np":
        return "NNPS" if plural else "NNP"
    if cat == "adj":
        return "JJR" if "comp" in rest else "JJS" if "sup" in rest else "JJ"
    if cat in ("adv", "preadv"):
        return "WRB" if rest & {"itg", "rel"} else "RBR" if "comp" in rest else "RBS" if "sup" in rest else "RB"
    if cat in ("vaux", "vbmod"):
        return "MD"
    if cat.startswith("vb"):
        if "past" in rest:
            return "VBD"
        if "pp" in rest:
            return "VBN"
        if rest & {"ger", "pprs"}:
            return "VBG"
        if "pres" in rest or "pri" in rest:
            return "VBZ" if {"p3", "sg"} <= rest else "VBP"
        return "VB"
    if cat in ("det", "predet"):
        return "PRP$" if "pos" in rest else "WDT" if rest & {"itg", "rel"} else "PDT" if cat == "predet" else "DT"
    if cat == "prn":
        return "PRP$" if "pos" in rest else "WP" if rest & {"itg", "rel"} else "PRP"
    simple = {"pr": "TO" if lemma.lower() == "to" else "IN", "cnjcoo": "CC", "cnjsub": "IN", "cnjadv": "IN",
              "num": "CD", "ij": "UH", "gen": "POS", "sent": ".", "cm": ",", "lpar": "-LRB-", "rpar": "-RRB-",
              "lquot": "``", "rquot": "''", "guio": ":", "apos": "''"}
    return simple.get(cat, UNKNOWN)


@TAGGERS.register("apertium")
class ApertiumTagger(Tagger):
    """The HMM tagger of an installed apertium pair (e.g. apertium-eng-spa for English), tags mapped to Penn."""

    name = "apertium"

    def __init__(self, lang: str = "en", pair: str | None = None, data_dir: str | None = None,
                 bin_dir: str | None = None):
        from ..translate.apertium import DEFAULT_DATA_DIR, ApertiumPair, _code3, installed_pairs

        data_dir = data_dir or DEFAULT_DATA_DIR
        names = installed_pairs(data_dir)
        forms = _code3(lang)
        sources = [p for p in names if p.split("-")[0] in forms]
        if pair is None and not sources:
            raise ConfigError("lang", lang, "no installed apertium pair analyses this language; installed "
                                            f"pairs: {', '.join(names) or 'none'} (apt-get install apertium-<pair>)")
        if pair is not None and pair not in names:
            raise ConfigError("pair", pair, f"not an installed apertium pair; installed: {', '.join(names) or 'none'}")
        self.languages = (lang,)
        super().__init__(lang)
        self.pair = ApertiumPair(pair or sources[0], __import__("pathlib").Path(data_dir), bin_dir)
        self.pair.tool("lt-proc")
        self.pair.tool("apertium-tagger")

    def close(self) -> None:
        self.pair.close()

    def tag_many(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        from ..translate.apertium import UNITS, escape_words

        # Each word is followed by a superblank "[]": the analyser keeps blanks in order and moves them
        # after a multi-word unit ("in front of" → one unit then three blanks), so counting blanks
        # aligns units with our words; a word inside a multi-word unit gets that unit's tag.
        items = [escape_words(words, "[]") + "[]" if words else "" for words in sentences]
        # the analyser stays running between calls; the tagger is a fresh process per call: it carries state
        # across null flushes, so only this way are a call's tags a function of its sentences alone
        outs = self.pair.run([self.pair.analyse_stage(), self.pair.tagger_stage()], items, desc="apertium tag",
                             keep=1)
        result = []
        for words, chunk in zip(sentences, outs, strict=True):
            n = len(words)
            tags: list[str | None] = [None] * n
            index, last = 0, UNKNOWN
            for unit, blank in UNITS.findall(chunk):
                if blank:  # one of our superblanks: it ends a word
                    if index < n and tags[index] is None:
                        tags[index] = last  # no unit of its own: part of the previous multi-word unit
                    index += 1
                elif unit and index < n:  # a lexical unit ^…$: the tagger's one reading
                    last = _penn_of_reading(unit[1:-1])
                    if tags[index] is None:  # John's → John<np> + 's<gen>: the first unit decides
                        tags[index] = last
            result.append([t or UNKNOWN for t in tags])
        return result


@lru_cache(maxsize=1 << 16)
def _penn_of_reading(unit: str) -> str:
    """Penn tag of a tagged unit (``book<n><pl>``; ``*xyzzy`` when unknown); readings repeat, so cached."""
    from ..translate.apertium import lemma_tags, split_unescaped

    reading = split_unescaped(unit, "/")[0]
    return UNKNOWN if reading.startswith("*") else apertium_to_penn(*lemma_tags(reading))


# --- spaCy -----------------------------------------------------------------------------------------

@TAGGERS.register("spacy")
class SpacyTagger(Tagger):
    """Any installed spaCy pipeline (``model=en_core_web_sm``…); words are kept as given (no re-tokenising)."""

    name = "spacy"

    def __init__(self, lang: str = "en", model: str = "en_core_web_sm", nlp: Any = None, batch_size: int = 256):
        spacy = require("spacy", f"pip install spacy && python -m spacy download {model}", "the spacy tagger")
        if nlp is None:
            try:
                nlp = spacy.load(model, exclude=["parser", "ner", "lemmatizer", "textcat"])
            except OSError as exc:
                from ..errors import MissingDependencyError

                raise MissingDependencyError(f"spaCy pipeline {model!r} is not installed. Install it with: "
                                             f"python -m spacy download {model} (or pip install its wheel)") from exc
        self.languages = (nlp.lang,)
        super().__init__(lang)
        self.nlp, self.batch_size = nlp, batch_size

    def tag_many(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        from spacy.tokens import Doc

        docs = (Doc(self.nlp.vocab, words=list(words)) for words in sentences)
        n_process = 1 if os.name != "posix" else 1  # spaCy multiprocessing costs more than it saves here
        return [[t.tag_ or UNKNOWN for t in doc]
                for doc in self.nlp.pipe(docs, batch_size=self.batch_size, n_process=n_process)]
