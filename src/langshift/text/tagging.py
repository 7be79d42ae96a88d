"""Part-of-speech taggers chosen by name; every tagger answers in Penn Treebank tags.

MIGRATE code-switches nouns, i.e. words tagged NN, NNS, NNP or NNPS (its footnote 1): ``is_noun``.
Taggers declare the languages they serve; asking one for another language is an error. A tag a
backend cannot decide (an unknown word to apertium) comes back as ``XX``, which is not a noun.

- ``hanta``: HanTa's English model (CLAWS5 tags, mapped to Penn). Pure Python, ~3-5k words/s.
- ``apertium``: the analyser + HMM tagger of an installed apertium pair whose source is the language;
  all sentences go through one subprocess (null-flush mode), its tags are mapped to Penn; for English its
  known noun errors are repaired (``repair_nouns``: "Birds build" read as two nouns).
- ``vote``: apertium and hanta (or the ``members`` given) vote; a noun needs a strict majority. MIGRATE's
  default: the most precise on bench/tagger_nouns.py's labelled sample (BENCHMARKS.md, "POS taggers").
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
    """The HMM tagger of an installed apertium pair (e.g. apertium-eng-spa for English), tags mapped to Penn.

    ``repair`` (default on) corrects the HMM where it is known to be wrong for MIGRATE: see
    ``repair_nouns`` (a verb read as a noun after its subject, a sentence-initial imperative) and
    ``_mwu_nouns`` (a noun inside a multi-word adverb such as "at night")."""

    name = "apertium"

    def __init__(self, lang: str = "en", pair: str | None = None, data_dir: str | None = None,
                 bin_dir: str | None = None, repair: bool = True):
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
        # repairs read English syntax: for another source language the HMM's choice stands
        self.repair = repair and lang in ("en", "eng")

    def close(self) -> None:
        self.pair.close()

    def tag_many(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        from ..translate.apertium_stream import UNITS, escape_words

        # Each word is followed by a superblank "[]": the analyser keeps blanks in order and moves them
        # after a multi-word unit ("in front of" → one unit then three blanks), so counting blanks
        # aligns units with our words; a word inside a multi-word unit gets that unit's tag.
        items = [escape_words(words, "[]") + "[]" if words else "" for words in sentences]
        # the analyser stays running between calls; the tagger is a fresh process per call: it carries state
        # across null flushes, so only this way are a call's tags a function of its sentences alone.
        # -f: each unit keeps all its readings, the chosen one first (the repairs look at the others)
        tagger = ["apertium-tagger", "-z", "-f", "-g", self.pair.file(".prob")]
        outs = self.pair.run([self.pair.analyse_stage(), tagger], items, desc="apertium tag", keep=1)
        result, inside = [], []
        for s, (words, chunk) in enumerate(zip(sentences, outs, strict=True)):
            n = len(words)
            readings: list[tuple | None] = [None] * n
            index, last = 0, ()
            for unit, blank in UNITS.findall(chunk):
                if blank:  # one of our superblanks: it ends a word
                    if index < n and readings[index] is None:  # no unit of its own: inside the previous one
                        readings[index] = last
                        inside.append((s, index))
                    index += 1
                elif unit and index < n:  # a lexical unit ^surface/chosen/others…$
                    last = _readings(unit[1:-1])
                    if readings[index] is None:  # John's → John<np> + 's<gen>: the first unit decides
                        readings[index] = last
            tags = [r[0][0] if r else UNKNOWN for r in readings]
            result.append(repair_nouns(list(words), tags, readings) if self.repair else tags)
        if self.repair:
            self._mwu_nouns(sentences, result, inside)
        return result

    def _mwu_nouns(self, sentences: Sequence[Sequence[str]], tags: list[list[str]], inside: list[tuple[int, int]]):
        """A word inside a multi-word unit gets the unit's tag ("at night" → adv), which hides nouns; such a
        word whose own analysis has only noun readings ("night", "day", "front" of "in front of" as Penn has
        it; not "second") is tagged a noun. A unit's first word keeps the unit's reading ("at")."""
        from ..translate.apertium_stream import UNITS, escape

        inside = [(s, i) for s, i in inside if not is_noun(tags[s][i])]
        distinct = list(dict.fromkeys(sentences[s][i] for s, i in inside))
        if not distinct:
            return
        analysed = self.pair.run([self.pair.analyse_stage()], [escape(w) for w in distinct], desc="apertium words",
                                 keep=1)
        alone = {}
        for word, chunk in zip(distinct, analysed, strict=True):
            found = [u for u, _ in UNITS.findall(chunk) if u]
            readings = _readings(found[0][1:-1]) if len(found) == 1 else ()
            if readings and all(tag in ("NN", "NNS") for tag, _ in readings):
                alone[word] = readings[0][0]
        for s, i in inside:
            tags[s][i] = alone.get(sentences[s][i], tags[s][i])


@lru_cache(maxsize=1 << 16)
def _readings(unit: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(Penn tag, apertium tags) of each reading of a unit ``surface/chosen/other…`` (tagger -f output) or
    ``surface/reading/…`` (analyser output); () when unknown (``*xyzzy``). Readings repeat, so cached."""
    from ..translate.apertium_stream import lemma_tags, split_unescaped

    fields = split_unescaped(unit, "/")
    out = []
    for reading in fields[1:]:
        if reading.startswith("*"):
            return ()
        lemma, tags = lemma_tags(reading)
        out.append((apertium_to_penn(lemma, tags), tuple(tags)))
    return tuple(out)


# The HMM's known noun errors, corrected only where the word ALSO has the verb reading the syntax asks for
_VERBS = frozenset({"VB", "VBD", "VBP", "VBZ", "MD"})
_PLURAL_SUBJECTS = frozenset({"i", "we", "you", "they"})
_SINGULAR_SUBJECTS = frozenset({"he", "she", "it"})
_CLAUSE_OPENERS = frozenset({"when", "if", "because", "that", "and", "but", "while", "as", "so", "until", "where",
                             "after", "before", "since", "though", "although", "whenever", "unless", "or"})
_NP_INNER = frozenset({"DT", "PDT", "PRP$", "JJ", "JJR", "JJS", "CD"})
_OBJECT_START = frozenset({"DT", "PDT", "PRP$", "PRP", "JJ", "JJR", "JJS", "NNS", "CD", "WRB", "WDT", "RB", ".",
                           "TO"})
_PARTICLES = frozenset({"off", "up", "out", "down", "on", "away", "back"})


def _has(readings, cat: str, *features: str) -> bool:
    return any(tags and tags[0] == cat and set(features) <= set(tags[1:]) for _, tags in readings)


def _clause_start(words: Sequence[str], tags: Sequence[str], i: int) -> bool:
    """True when only determiners/adjectives/numbers stand between word ``i`` and a clause start."""
    j = i - 1
    while j >= 0 and tags[j] in _NP_INNER:
        j -= 1
    return j < 0 or words[j].lower() in _CLAUSE_OPENERS or tags[j] in (",", ":")


def repair_nouns(words: Sequence[str], tags: list[str], readings: Sequence[Sequence]) -> list[str]:
    """Correct apertium's HMM where it reads a verb as a noun (pure; ``readings`` as ``_readings`` gives them):

    1. after a clause-initial plural subject ("Birds build", "when strangers walk", "They need"), a word
       tagged NN that has a present-tense verb reading, not followed by a verb, is that verb (VBP);
    2. after a clause-initial singular subject ("The museum shows", "the baby cries"), a word tagged NNS with
       a 3rd-person-singular reading, followed by what can start an object or end the clause, is VBZ;
    3. a sentence-initial word (or one after "please") tagged NN with an infinitive reading, followed by a
       determiner, pronoun, number or particle ("Turn off the light", "Chop the onions"), is an imperative.
    Each rule needs the verb reading among the word's analyses, so a word that is only a noun never changes."""
    tags = list(tags)
    n = len(tags)
    for i in range(n):
        prev = tags[i - 1] if i else None
        nxt = tags[i + 1] if i + 1 < n else "."
        nxt_word = words[i + 1].lower() if i + 1 < n else ""
        r = readings[i]
        if tags[i] == "NN" and i and _has(r, "vblex", "pres") and nxt not in _VERBS:
            plural = prev in ("NNS", "NNPS") or _has(readings[i - 1], "n", "pl")
            if (plural and _clause_start(words, tags, i - 1)) or words[i - 1].lower() in _PLURAL_SUBJECTS:
                tags[i] = "VBP"
                continue
        if tags[i] == "NNS" and i and _has(r, "vblex", "pri", "p3", "sg") and nxt in _OBJECT_START:
            if ((prev in ("NN", "NNP") and _clause_start(words, tags, i - 1))
                    or words[i - 1].lower() in _SINGULAR_SUBJECTS):
                tags[i] = "VBZ"
                continue
        first = i == 0 or (i == 1 and words[0].lower() == "please")
        if first and tags[i] == "NN" and _has(r, "vblex", "inf") and (
                nxt in ("DT", "PRP$", "PRP", "CD") or nxt_word in _PARTICLES):
            tags[i] = "VB"
    return tags


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


# --- vote ------------------------------------------------------------------------------------------

@TAGGERS.register("vote")
class VoteTagger(Tagger):
    """A vote of several taggers, for MIGRATE's one question: is this word a noun?

    A member that cannot decide (``XX``: a word apertium does not know) abstains; a word is a noun when MORE
    than half of the deciding members say so (with two: both), so a tie leaves it untranslated; its tag is
    the most common tag on the winning side, ties going to the earlier member. ``members`` default: apertium
    and hanta, fixed so that the default's tags do not change with what else is installed; add spacy by
    name (``members=["apertium", "hanta", "spacy"], spacy={"model": ...}``). Options for a member go under
    its name."""

    name = "vote"
    DEFAULT = ("apertium", "hanta")

    def __init__(self, lang: str = "en", members: Sequence[str] | None = None, **options: Any):
        from ..errors import MissingDependencyError

        self.languages = (lang,)
        super().__init__(lang)
        self.taggers: list[Tagger] = []
        for name in members or self.DEFAULT:
            if name == "vote":
                raise ConfigError("members", list(members or ()), "a vote cannot include itself")
            try:
                self.taggers.append(get_tagger(name, lang, **options.get(name, {})))
            except MissingDependencyError as exc:
                raise MissingDependencyError(f"the vote tagger's member {name!r} is missing: {exc}") from exc
        self.members = [t.name for t in self.taggers]
        if len(self.taggers) < 2:
            raise ConfigError("members", list(members or self.DEFAULT), "a vote needs at least two taggers, "
                              "e.g. apertium hanta (or apertium hanta spacy)")

    def tag_many(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        each = [t.tag_many(sentences) for t in self.taggers]
        return [[vote_tag(column) for column in zip(*(votes[s] for votes in each), strict=True)]
                for s in range(len(sentences))]

    def close(self) -> None:
        for t in self.taggers:
            t.close()


def vote_tag(tags: Sequence[str]) -> str:
    """The vote of one word's tags (in member order): ``XX`` abstains; a noun tag only for a strict majority
    of noun tags among the others; ``XX`` when every member abstains."""
    tags = [t for t in tags if t != UNKNOWN]
    nouns = [t for t in tags if is_noun(t)]
    side = nouns if 2 * len(nouns) > len(tags) else [t for t in tags if not is_noun(t)]
    return max(side, key=lambda t: (side.count(t), -side.index(t))) if side else UNKNOWN
