"""Apertium (rule-based MT) as a translator and as the source of an English tagger.

Everything is batched through apertium's null-flush mode (``-z``): items are written to ONE
subprocess pipeline, each ended by a NUL byte; every stage flushes at a NUL, so the output splits
back on NUL one-to-one. Words go through the morphological analyser (+ tagger when no tag
is given), the bilingual transducer and the generator, so inflection survives:
``books`` → ``^book<n><pl>$`` → ``libro<n><m><pl>`` → ``libros``. Sentences go through the pair's
whole mode (``apertium -f none -z -u PAIR``), with apertium's stream characters escaped.

Caveat: apertium-tagger does NOT fully reset at a NUL (an earlier item can change a later item's tags,
e.g. a preceding "till" turns "he called" from past into participle), so a call's tags depend on the
other items of that call, and a tagger stage always gets a fresh process per call: the tags are then a
function of the call's items alone, whatever ran before. The stateless transducer stages (lt-proc
analysis, bilingual look-up, generation) instead stay running between calls (``run(..., keep=N)``), the
analysis passing its output on to a fresh tagger: MIGRATE tags and translates batch after batch, and
starting lt-proc (~25 ms of CPU to load a transducer) each time cost more than its look-ups. The
whole-pair mode is started per call too: some of its transfer stages only flush at the end of input.
The stream format and the pipelines are in ``apertium_stream.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import ConfigError, LangshiftError, MissingDependencyError
from .apertium_stream import (
    KeptPipeline,
    escape,
    lemma_tags,
    nul_payload,
    pipeline_command,
    run_fresh,
    split_unescaped,
    stream_tokens,
    unescape,
    write_all,
)
from .base import TRANSLATORS, Translator

DEFAULT_DATA_DIR = "/usr/share/apertium"
INSTALL = "apt-get install apertium apertium-eng-spa (or the apertium-<pair> package for your languages)"
_BATCH = 20000  # items per subprocess call: bounds memory, keeps the progress bar moving


# --- 1. Finding installed pairs and their files ---------------------------------------------------

def _code3(lang: str) -> set[str]:
    """The spellings of a language code apertium may use (``en`` and ``eng``)."""
    import langcodes

    forms = {lang}
    try:
        tag = langcodes.Language.get(lang)
        forms |= {tag.language or lang, tag.to_alpha3()}
    except (LookupError, ValueError):
        pass
    return {f.lower() for f in forms if f}


def installed_pairs(data_dir: str | os.PathLike = DEFAULT_DATA_DIR) -> list[str]:
    modes = Path(data_dir) / "modes"
    return sorted(p.stem for p in modes.glob("*.mode")) if modes.is_dir() else []


@dataclass
class ApertiumPair:
    """One installed pair: its mode name and the transducer files its mode file names."""

    pair: str
    data_dir: Path
    bin_dir: str | None = None
    _pipes: dict[str, KeptPipeline] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @classmethod
    def find(cls, source_lang: str, target_lang: str, data_dir: str | os.PathLike = DEFAULT_DATA_DIR,
             bin_dir: str | None = None, param: str = "source_lang/target_lang") -> ApertiumPair:
        pairs = installed_pairs(data_dir)
        if not pairs:
            raise MissingDependencyError(f"no apertium language pairs under {data_dir}/modes. Install with: {INSTALL}")
        source_forms, target_forms = _code3(source_lang), _code3(target_lang)
        for name in pairs:
            parts = name.split("-")
            if len(parts) == 2 and parts[0] in source_forms and parts[1] in target_forms:
                return cls(name, Path(data_dir), bin_dir)
        raise ConfigError(param, f"{source_lang}-{target_lang}", f"apertium has no such installed pair; installed pairs: "
                                                 f"{', '.join(pairs)} (more: apt-get install apertium-<pair>)")

    @cached_property
    def mode_text(self) -> str:
        return (self.data_dir / "modes" / f"{self.pair}.mode").read_text(encoding="utf-8")

    def file(self, suffix: str) -> str:
        """The path in the mode file ending in ``suffix`` (e.g. ``.autobil.bin``)."""
        for path in re.findall(r"'([^']+)'", self.mode_text) + self.mode_text.split():
            if path.endswith(suffix) and not path.endswith("_" + suffix.lstrip(".")):
                return path
        # files the mode does not name (a tagger-less mode) may still sit next to the ones it does
        named = re.findall(r"'([^']+\.bin)'", self.mode_text)
        if named:
            guess = Path(named[0]).parent / f"{self.pair}{suffix}"
            if guess.exists():
                return str(guess)
        raise LangshiftError(f"apertium pair {self.pair!r} has no {suffix} file; reinstall apertium-{self.pair}")

    def tool(self, name: str) -> str:
        found = shutil.which(name, path=self.bin_dir) if self.bin_dir else shutil.which(name)
        if not found:
            where = f" in {self.bin_dir}" if self.bin_dir else ""
            raise MissingDependencyError(f"the apertium program {name!r} was not found{where}. Install with: {INSTALL}")
        return found

    # --- 3. Running a pipeline over many items ------------------------------------------------------

    def run(self, stages: list[list[str]], items: list[str], desc: str = "apertium", keep: int = 0) -> list[str]:
        """Feed ``items`` (already in stream format) through ``stages``; one output string per item.
        The first ``keep`` stages (stateless ones only) run in this pair's pipeline kept between calls;
        the others in a fresh process per call."""
        if not items:
            return []
        kept_cmd = pipeline_command(stages[:keep], self.tool) if keep else None
        fresh_cmd = pipeline_command(stages[keep:], self.tool) if keep < len(stages) else None
        out: list[str] = []
        starts = range(0, len(items), _BATCH)
        for start in tqdm(starts, desc=desc, disable=len(items) <= _BATCH, unit="batch"):
            part = items[start:start + _BATCH]
            payload, n = nul_payload(part), len(part)
            if fresh_cmd is None:  # all kept
                raw = self._kept(kept_cmd).process(payload, n)
                out.extend(raw.decode("utf-8", "replace").split("\0")[:n])
            elif kept_cmd is None:  # all fresh
                out.extend(run_fresh(fresh_cmd, partial(write_all, payload), n))
            else:  # the kept stages stream their output into the fresh ones
                out.extend(run_fresh(fresh_cmd, partial(self._kept(kept_cmd).process, payload, n), n))
        return out

    def _kept(self, cmd: str) -> KeptPipeline:
        with self._lock:
            pipe = self._pipes.get(cmd)
            if pipe is None or not pipe.usable():
                pipe = self._pipes[cmd] = KeptPipeline(cmd)
            return pipe

    def close(self) -> None:
        """Stop this pair's kept pipelines (they also stop when the pair is garbage-collected)."""
        with self._lock:
            for pipe in self._pipes.values():
                pipe.stop()
            self._pipes.clear()

    def __getstate__(self) -> dict:
        # a copy in another process starts its own pipelines
        return {k: v for k, v in self.__dict__.items() if k not in ("_pipes", "_lock")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _pipes={}, _lock=threading.Lock())

    def analyse_stage(self) -> list[str]:
        return ["lt-proc", "-z", "-w", self.file(".automorf.bin")]

    def tagger_stage(self) -> list[str]:
        return ["apertium-tagger", "-z", "-g", self.file(".prob")]


# --- 2. Words: analyse (and tag), translate lemma+tags, generate the inflected form -----------------

# Penn tag → apertium categories that may carry it, and the number it implies
_PENN_CLASSES = {
    "NN": (("n",), "sg"), "NNS": (("n",), "pl"), "NNP": (("np", "n"), "sg"), "NNPS": (("np", "n"), "pl"),
    "JJ": (("adj",), None), "JJR": (("adj",), None), "JJS": (("adj",), None),
    "RB": (("adv", "preadv"), None), "RBR": (("adv",), None), "RBS": (("adv",), None),
    "MD": (("vaux", "vbmod"), None), "CD": (("num",), None), "IN": (("pr", "cnjsub"), None),
    "TO": (("pr",), None), "DT": (("det",), None), "PRP": (("prn",), None), "PRP$": (("det", "prn"), None),
    "CC": (("cnjcoo",), None), "UH": (("ij",), None),
    **{t: (("vblex", "vbser", "vbhaver", "vbdo", "vbmod", "vaux"), None)
       for t in ("VB", "VBD", "VBG", "VBN", "VBP", "VBZ")},
}
_GENDERS = ("m", "f", "mf", "nt", "ut", "n")


def pick_analysis(readings: list[str], penn: str) -> str | None:
    """The reading of a word that fits its Penn tag (category, then number); None if none fits."""
    classes, number = _PENN_CLASSES.get(penn, ((), None))
    best, best_score = None, -1
    for reading in readings:
        lemma, tags = lemma_tags(reading)
        if not tags or tags[0] not in classes:
            continue
        score = (len(classes) - classes.index(tags[0])) * 4
        if number is not None and (number in tags or "sp" in tags):
            score += 2
        if score > best_score:
            best, best_score = reading, score
    return best


def match_case(source: str, target: str) -> str:
    """Title-case in → Title-case out, UPPER in → UPPER out, otherwise the target as generated."""
    if len(source) > 1 and source.isupper():
        return target.upper()
    if source[:1].isupper() and target[:1].islower():
        return target[:1].upper() + target[1:]
    return target


def translate_words(pair: ApertiumPair, gen_pair_file: str, words: list[str],
                    tags: list[str] | None) -> list[str | None]:
    # 4a. analysis input: an all-caps word is looked up lower-cased (the analyser would call it unknown)
    probe = [w.lower() if len(w) > 1 and w.isupper() else w for w in words]
    stages = [pair.analyse_stage()] if tags is not None else [pair.analyse_stage(), pair.tagger_stage()]
    # the analyser is kept running; the tagger, which carries state, is fresh per call (see the module note)
    analysed = pair.run(stages, [escape(w) for w in probe], desc="apertium analyse", keep=1)
    chosen: list[str | None] = []
    for i, chunk in enumerate(analysed):
        lus = [c for kind, c in stream_tokens(chunk) if kind == "lu"]
        if len(lus) != 1:  # empty, or the word splits into several units (John's → John + 's): skip
            chosen.append(None)
            continue
        parts = split_unescaped(lus[0], "/")
        if tags is None:  # tagger output: one reading, "*word" when unknown
            chosen.append(None if parts[0].startswith("*") else parts[0])
        else:  # analyser output: surface/reading1/reading2...
            readings = [p for p in parts[1:] if not p.startswith("*")]
            chosen.append(pick_analysis(readings, tags[i]))
    # 4b. bilingual transducer: lemma<tags> → target lemma<tags> (first = default sense)
    todo = [i for i, a in enumerate(chosen) if a is not None]
    bil = pair.run([["lt-proc", "-z", "-b", pair.file(".autobil.bin")]],
                   [f"^{chosen[i]}$" for i in todo], desc="apertium bilingual", keep=1)
    target: dict[int, str] = {}
    for i, chunk in zip(todo, bil, strict=True):
        lus = [c for kind, c in stream_tokens(chunk) if kind == "lu"]
        parts = split_unescaped(lus[0], "/") if len(lus) == 1 else []
        if len(parts) >= 2 and not parts[1].startswith("@") and parts[1].strip():
            target[i] = parts[1]
    # 4c. generation; an unresolved gender/number (<GD>/<ND>, normally fixed by transfer rules) is
    # retried dropped (the tag may repeat one already there: tiempo<n><m><ND><sg>), then with the source
    # number and each gender the generator may know
    out: list[str | None] = [None] * len(words)
    pending: dict[int, list[str]] = {}
    for i, t in target.items():
        number = next((n for n in ("sg", "pl") if f"<{n}>" in (chosen[i] or "")), "sg")
        nd_opts = ["", f"<{number}>"] if "<ND>" in t else ["<ND>"]
        gd_opts = ["", *(f"<{g}>" for g in _GENDERS)] if "<GD>" in t else ["<GD>"]
        pending[i] = [t] + [t.replace("<ND>", nd).replace("<GD>", gd) for nd in nd_opts for gd in gd_opts]
    flat = [(i, cand) for i, cands in pending.items() for cand in dict.fromkeys(cands)]
    generated = pair.run([["lt-proc", "-z", "-g", gen_pair_file]], [f"^{c}$" for _, c in flat],
                         desc="apertium generate", keep=1)
    for (i, _), form in zip(flat, generated, strict=True):
        form = unescape(form).replace("~", "").strip()
        if out[i] is None and form and not form.startswith(("#", "@", "*")):
            out[i] = match_case(words[i], form)
    return out


def translate_sentences(pair: ApertiumPair, sentences: list[str]) -> list[str | None]:
    # a newline inside an item would be kept by apertium; the item is one line of text
    items = [escape(" ".join(s.split())) + "\n" for s in sentences]
    stages = [["apertium", "-f", "none", "-z", "-u", "-d", str(pair.data_dir), pair.pair]]
    outs = pair.run(stages, items, desc="apertium translate")
    return [unescape(o).strip() or None if s.strip() else s for s, o in zip(sentences, outs, strict=True)]


@TRANSLATORS.register("apertium")
class ApertiumTranslator(Translator):
    """Rule-based apertium pair; words keep their inflection and case (needs apertium-<pair>)."""

    name = "apertium"

    def __init__(self, source_lang: str, target_lang: str, data_dir: str = DEFAULT_DATA_DIR, bin_dir: str | None = None):
        super().__init__(source_lang, target_lang)
        self.pair = ApertiumPair.find(source_lang, target_lang, data_dir, bin_dir)
        self.pair.tool("lt-proc")  # fail now, not at the first batch, when apertium is missing
        self.pair.tool("apertium")

    def options(self) -> dict:
        return {"pair": self.pair.pair}

    def translate_words(self, words: list[str], tags: list[str] | None = None) -> list[str | None]:
        return translate_words(self.pair, self.pair.file(".autogen.bin"), words, tags)

    def translate_sentences(self, sentences: list[str]) -> list[str | None]:
        return translate_sentences(self.pair, sentences)

    def close(self) -> None:
        """Stop the word pipelines kept between calls (a later call starts them again)."""
        self.pair.close()
