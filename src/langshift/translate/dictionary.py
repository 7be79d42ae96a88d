"""Word translation from a bilingual dictionary file: FreeDict dictd (``.index`` + ``.dict.dz``) or a
MUSE-style two-column file (``source target`` per line, one line per sense).

Lookup is exact, then lower-cased; the answer takes the word's case (Title in → Title out). There is
no inflection: ``books`` is found only if the dictionary lists it. A word with several entries or
senses gets, with ``choose="frequency"`` (default when wordfreq knows the target language), the sense
that is the most frequent target-language word — FreeDict lists "book (keeper)" before "book" under
the same headword, so file order alone picks oddities; ``choose="first"`` keeps file order.
"""

from __future__ import annotations

import gzip
import re
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError, LangshiftError
from .apertium import _code3, match_case
from .base import TRANSLATORS, Translator

DICTD_DIR = Path("/usr/share/dictd")
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64_number(text: str) -> int:
    """dictd writes offsets as base-64 digits (not base64-encoded bytes)."""
    value = 0
    for ch in text:
        value = value * 64 + _B64.index(ch)
    return value


def parse_dictd_entry(body: str) -> list[str]:
    """Translations in one dictd entry, in order: "book /buk/\\n1. libro\\n2. pedir" → [libro, pedir]."""
    senses = []
    for line in body.splitlines()[1:]:  # the first line repeats the headword (and pronunciation)
        line = re.sub(r"^\s*\d+\.\s*", "", line).strip()
        if not line or line.lower().startswith(("note:", "see:", "synonym", "antonym")):
            continue
        senses.append([s.strip() for s in re.split(r"[,;]", line) if s.strip()])
    return [s for sense in senses for s in sense]


def read_dictd(index_path: str | Path) -> dict[str, list[list[str]]]:
    """headword → one list of translations per entry, in file order."""
    index_path = Path(index_path)
    dict_path = next((p for p in (index_path.with_suffix(".dict.dz"), index_path.with_suffix(".dict"))
                      if p.exists()), None)
    if dict_path is None:
        raise ConfigError("path", str(index_path), "no .dict.dz or .dict file next to this .index file")
    opener = gzip.open if dict_path.suffix == ".dz" else open
    with opener(dict_path, "rb") as fh:
        data = fh.read()
    entries: dict[str, list[list[str]]] = {}
    with open(index_path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                raise LangshiftError(f"{index_path}: line {number} is not 'headword<TAB>offset<TAB>length'")
            head, offset, length = parts[0], _b64_number(parts[1]), _b64_number(parts[2])
            if head.startswith("00database") or head.startswith("00-database"):
                continue
            body = data[offset:offset + length].decode("utf-8", "replace")
            found = parse_dictd_entry(body)
            if found:
                entries.setdefault(head, []).append(found)
    return entries


def read_two_column(path: str | Path) -> dict[str, list[list[str]]]:
    """MUSE-style file: "source<space or tab>target" per line; each line is one sense."""
    entries: dict[str, list[list[str]]] = {}
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            parts = line.split("\t") if "\t" in line else line.split(None, 1)
            if len(parts) != 2:
                raise LangshiftError(f"{path}: line {number} needs two columns (source and target), got {line!r}")
            entries.setdefault(parts[0].strip(), []).append([parts[1].strip()])
    return entries


def load_dictionary(path: str) -> dict[str, list[list[str]]]:
    stat = Path(path).stat()
    return _load(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, size: int) -> dict[str, list[list[str]]]:  # keyed by file version
    p = Path(path)
    return read_dictd(p) if p.suffix == ".index" else read_two_column(p)


def freedict_pairs(folder: Path = DICTD_DIR) -> list[str]:
    return sorted(p.name[len("freedict-"):-len(".index")] for p in folder.glob("freedict-*.index"))


@TRANSLATORS.register("dictionary")
class DictionaryTranslator(Translator):
    """Bilingual dictionary lookup (FreeDict dictd or a MUSE two-column file); words only."""

    name = "dictionary"

    def __init__(self, source_lang: str, target_lang: str, path: str | None = None, choose: str = "frequency"):
        super().__init__(source_lang, target_lang)
        if choose not in ("frequency", "first"):
            raise ConfigError("choose", choose, "use 'frequency' (most frequent target word) or 'first' (file order)")
        if path is None:
            path = self._find_freedict(source_lang, target_lang)
        elif not Path(path).is_file():
            raise ConfigError("path", path, "no such file; give a dictd .index file or a two-column text file")
        self.path = str(path)
        self.choose = choose
        self.entries = load_dictionary(self.path)
        self._lower: dict[str, str] = {}
        for head in self.entries:
            self._lower.setdefault(head.lower(), head)

    @staticmethod
    def _find_freedict(source_lang: str, target_lang: str) -> str:
        for s in sorted(_code3(source_lang)):
            for t in sorted(_code3(target_lang)):
                candidate = DICTD_DIR / f"freedict-{s}-{t}.index"
                if candidate.exists():
                    return str(candidate)
        have = freedict_pairs()
        raise ConfigError("source_lang/target_lang", f"{source_lang}-{target_lang}",
                          f"no FreeDict dictionary for this pair in {DICTD_DIR} (installed: {', '.join(have) or 'none'}); "
                          f"apt-get install dict-freedict-<src>-<tgt>, or pass path= to a two-column file")

    def options(self) -> dict:
        p = Path(self.path)
        return {"path": str(p.resolve()), "mtime": p.stat().st_mtime_ns, "choose": self.choose}

    def _best(self, senses: list[list[str]]) -> str:
        every = [s for entry in senses for s in entry]
        if self.choose == "first" or len(every) == 1:
            return every[0]
        try:
            from wordfreq import zipf_frequency

            return max(every, key=lambda w: zipf_frequency(w, self.target_lang))  # max keeps file order on ties
        except (ImportError, LookupError, ValueError):
            return every[0]

    def translate_words(self, words: list[str], tags: list[str] | None = None) -> list[str | None]:
        out: list[str | None] = []
        for word in words:
            head = word if word in self.entries else self._lower.get(word.lower())
            out.append(match_case(word, self._best(self.entries[head])) if head else None)
        return out

    def translate_sentences(self, sentences: list[str]) -> list[str | None]:
        raise ConfigError("backend", "dictionary", "a dictionary translates words only; for sentences use "
                                                   "apertium, seq2seq or llm")
