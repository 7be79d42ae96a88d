"""SynCS §4.1 step 1: a teacher writes token-level code-switching from parallel sentences, then a filter.

The teacher sees a (source, translation) pair and the App. C.1 prompt for Token-Annt. or Token-Repl.;
its output is kept only when it passes ``teach_filter`` (the source's other words kept in order, the
switched words from the translation, the switched spans in the target language).
Rows: {id, source, translation, kind, output, spans}.

Teachers: ``rule`` (offline default) — the SynCS word swapper (``syncs.eligible_words``/``build``)
with each word translation kept only if it occurs in the given translation; ``endpoint`` — an
OpenAI-compatible chat model (``evaluate.judge.Endpoint``); ``hf`` — a local causal LM.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ..config import Result, StageConfig, check_range, opt
from ..errors import ConfigError, LangshiftError
from ..registry import Registry
from .provenance import check_share
from .teach_filter import FilterConfig, check_rows, word_keys

log = logging.getLogger(__name__)
KINDS = ("token-repl", "token-annt")

# 1. The App. C.1 prompts ------------------------------------------------------------------------------
# The seed gives each prompt's instruction and the "[<Language> Sentence]:" slots; the student gets the
# same prompt with only the source slot ("we directly reuse the prompts above except only the source
# language sentence is given").
_INSTRUCTION = {
    "token-annt": "Given a pair of {src}-{tgt} parallel sentence, generate a {tgt}-annotated {src} sentence. "
                  "Annotation is the use of words from another language to explain certain words in a sentence.",
    "token-repl": "Given a pair of {src}-{tgt} sentence, generate a {src} and {tgt} code-switching sentence. "
                  "Code-switching is the use of more than one linguistic variety in a manner consistent with the "
                  "syntax and phonology of each variety.",
}


def prompt(kind: str, source: str, source_lang: str, target_lang: str, translation: str | None = None) -> str:
    """The App. C.1 prompt; without ``translation`` it is the student's (source side only)."""
    from ..translate.llm import language_name

    if kind not in KINDS:
        raise ConfigError("kind", kind, f"token-level kinds are {', '.join(KINDS)}")
    src, tgt = language_name(source_lang), language_name(target_lang)
    text = re.sub(r"\ba (?=[AEIOU])", "an ", _INSTRUCTION[kind].format(src=src, tgt=tgt))  # "an English"
    text += f"\n\n[{src} Sentence]: {source}"
    return text + (f"\n[{tgt} Sentence]: {translation}" if translation is not None else "")


def clean_reply(reply: str | None) -> str | None:
    """The sentence in a chat reply: first non-empty line, without a "[… Sentence]:" label or quotes."""
    for line in (reply or "").splitlines():
        line = re.sub(r"^\s*\[[^\]]*\]\s*:\s*", "", line).strip().strip('"“”«»').strip()
        if line:
            return line
    return None


# 2. Teachers ------------------------------------------------------------------------------------------

TEACHERS: Registry[type] = Registry("code-switching teacher", modules=[__name__])


@dataclass
class TeachOptions(StageConfig):
    source_lang: str = opt("en", "language of the sentences to code-switch")
    target_lang: str = opt("es", "language of the switched-in words")
    teacher: str = opt("rule", "rule (offline: word swapper constrained to the translation), endpoint, or hf")
    kinds: list[str] = opt(list(KINDS), "token-level kinds to write; each pair gets one, dealt in turn")
    model: str | None = opt(None, "teacher=endpoint: the served model name; teacher=hf: model folder or name")
    url: str | None = opt(None, "teacher=endpoint: OpenAI-compatible base URL")
    api_key_env: str | None = opt(None, "teacher=endpoint: environment variable holding the API key")
    translator: str = opt("apertium", "teacher=rule: word translator by name")
    dictionary: str | None = opt(None, "teacher=rule, translator=dictionary: a dictd .index or two-column file "
                                       "(default: the installed FreeDict one)")
    words: Literal["nouns", "content", "random"] = opt("nouns", "teacher=rule: which words may switch")
    tagger: str = opt("apertium", "teacher=rule: POS tagger for words=nouns|content")
    word_share: float = opt(0.3, "teacher=rule: share of eligible words tried per sentence")
    batch_size: int = opt(16, "teacher=hf: prompts per generation batch")
    max_new_tokens: int = opt(160, "teacher=hf: longest reply")
    seed: int = opt(0, "seed for the rule teacher's word choice")

    def validate(self) -> None:
        super().validate()
        TEACHERS.get(self.teacher, "--teacher")
        bad = [k for k in self.kinds if k not in KINDS]
        if bad or not self.kinds:
            raise ConfigError("--kinds", self.kinds, f"give one or more of {', '.join(KINDS)}")
        check_share("word_share", self.word_share)
        check_range("--batch-size", self.batch_size, 1)
        check_range("--max-new-tokens", self.max_new_tokens, 1)
        if self.teacher in ("endpoint", "hf") and not self.model:
            raise ConfigError("--model", self.model, f"teacher={self.teacher} needs the model to ask")
        if self.dictionary and self.translator != "dictionary":
            raise ConfigError("--dictionary", self.dictionary, "applies to --translator dictionary only")
        if self.teacher == "endpoint" and not self.url:
            raise ConfigError("--url", self.url, "teacher=endpoint needs the endpoint's base URL, e.g. "
                                                 "http://127.0.0.1:8000/v1")


@TEACHERS.register("rule")
class RuleTeacher:
    """SynCS's swapper given the pair: eligible words are translated one by one and switched only when
    the word translation occurs in the sentence's translation (the dictionary's one-to-many problem,
    settled by the parallel sentence)."""

    def __init__(self, cfg: TeachOptions):
        from ..translate import get_translator

        extra = {"path": cfg.dictionary} if cfg.dictionary else {}
        self.cfg, self.tr = cfg, get_translator(cfg.translator, cfg.source_lang, cfg.target_lang, **extra)
        self.tagger = None
        if cfg.words != "random":
            from ..text.tagging import get_tagger

            self.tagger = get_tagger(cfg.tagger, cfg.source_lang)

    def write(self, pairs: Sequence[tuple[str, str]], kinds: Sequence[str]) -> list[str | None]:
        from ..text.units import words
        from .syncs import build, eligible_words, pick_words

        cands = eligible_words([s for s, _ in pairs], self.cfg.words, self.tagger)
        present = [set(word_keys(words(t))) for _, t in pairs]
        # translate each distinct (word, tag) once; keep those found in the pair's translation
        keys = list(dict.fromkeys((w, t) for cs in cands for _, _, w, t in cs))
        tags = None if self.cfg.words == "random" else [t for _, t in keys]
        memo = dict(zip(keys, self.tr.translate_words([w for w, _ in keys], tags), strict=True)) if keys else {}
        out = []
        for n, ((src, _), cs, have, kind) in enumerate(zip(pairs, cands, present, kinds, strict=True)):
            found = [(c, memo.get((c[2], c[3]))) for c in cs]
            ok = [c for c, tr in found if tr and tr.casefold() != c[2].casefold()
                  and all(k in have for k in word_keys(words(tr)))]
            picked = pick_words(ok, self.cfg.word_share, self.cfg.seed, str(n))
            text, edits = build(src, kind, picked, memo, None)
            out.append(text if edits else None)
        return out


@TEACHERS.register("endpoint")
class EndpointTeacher:
    """An OpenAI-compatible chat model asked with the App. C.1 prompt, one request per pair."""

    def __init__(self, cfg: TeachOptions):
        from ..evaluate.judge import endpoint_from_args

        self.cfg = cfg
        self.endpoint = endpoint_from_args(cfg.url, cfg.model, cfg.api_key_env)

    def write(self, pairs: Sequence[tuple[str, str]], kinds: Sequence[str]) -> list[str | None]:
        c = self.cfg
        return [clean_reply(self.endpoint.chat(prompt(k, s, c.source_lang, c.target_lang, t)))
                for (s, t), k in zip(pairs, kinds, strict=True)]


@TEACHERS.register("hf")
class HFTeacher:
    """A local causal LM (instruction-tuned, with a chat template) asked with the App. C.1 prompt."""

    def __init__(self, cfg: TeachOptions):
        from ..models import load_model, load_tokenizer

        self.cfg = cfg
        self.tokenizer, self.model = load_tokenizer(cfg.model, "--model"), load_model(cfg.model, "--model").eval()

    def write(self, pairs: Sequence[tuple[str, str]], kinds: Sequence[str]) -> list[str | None]:
        from .synth import generate

        c = self.cfg
        prompts = [prompt(k, s, c.source_lang, c.target_lang, t) for (s, t), k in zip(pairs, kinds, strict=True)]
        replies, _ = generate(self.model, self.tokenizer, prompts, c.batch_size, c.max_new_tokens)
        return [clean_reply(r) for r in replies]


# 3. The stage -----------------------------------------------------------------------------------------

def read_pairs(path: str | os.PathLike, param: str = "--pairs") -> list[tuple[str, str]]:
    """(source, translation) pairs: JSONL with source/translation (or src/tgt, en/xx) fields, or TSV."""
    from ..files import read_json_lines, read_lines

    if str(path).endswith(".jsonl"):
        pairs = []
        for number, rec in read_json_lines(path, param):
            for a, b in (("source", "translation"), ("src", "tgt"), ("en", "xx")):
                if isinstance(rec.get(a), str) and isinstance(rec.get(b), str) and rec[a].strip() and rec[b].strip():
                    pairs.append((rec[a].strip(), rec[b].strip()))
                    break
            else:
                raise LangshiftError(f"{param}={str(path)!r}: line {number}: needs non-empty string fields "
                                     "source/translation (or src/tgt, or en/xx)")
        return pairs
    pairs = []
    for number, line in enumerate(read_lines(path, param), 1):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise LangshiftError(f"{param}={str(path)!r}: line {number}: give 'source<TAB>translation' lines "
                                 "(or a .jsonl file)")
        pairs.append((parts[0].strip(), parts[1].strip()))
    return pairs


def teach(pairs: Sequence[tuple[str, str]], cfg: TeachOptions, fcfg: FilterConfig | None = None,
          teacher=None) -> tuple[list[dict], dict]:
    """Teacher rows for ``pairs`` (kinds dealt in turn), all checked; (rows, stats). Keep rows whose
    ``rejected`` is None."""
    if not pairs:
        raise ConfigError("pairs", 0, "give at least one (source, translation) pair")
    fcfg = fcfg or FilterConfig()
    teacher = teacher or TEACHERS.get(cfg.teacher, "--teacher")(cfg)
    kinds = [cfg.kinds[i % len(cfg.kinds)] for i in range(len(pairs))]
    outputs = teacher.write(pairs, kinds)
    rows = [{"id": str(i), "source": s, "translation": t, "kind": k, "output": o}
            for i, ((s, t), k, o) in enumerate(zip(pairs, kinds, outputs, strict=True))]
    rows = check_rows(rows, cfg.source_lang, cfg.target_lang, fcfg)
    kept = [r for r in rows if r["rejected"] is None]
    reasons: dict[str, int] = {}
    for r in rows:
        if r["rejected"] is not None:
            key = r["rejected"].split(":")[0].split("(")[0].strip()
            reasons[key] = reasons.get(key, 0) + 1
    stats = {"pairs": len(pairs), "written": sum(o is not None for o in outputs), "kept": len(kept),
             "per_kind": {k: sum(r["kind"] == k for r in kept) for k in cfg.kinds}, "rejected": reasons}
    return rows, stats


@dataclass
class TeachFiles(StageConfig):
    INPUTS: ClassVar[tuple[str, ...]] = ("pairs",)

    pairs: str = opt(help="parallel sentences: TSV (source<TAB>translation) or JSONL (source/translation, "
                          "src/tgt or en/xx fields)")
    out: str = opt(help="teacher rows (JSONL); a summary goes to OUT.summary.json")
    limit: int | None = opt(None, "use only the first LIMIT pairs")
    keep_rejected: bool = opt(False, "also write rejected rows (with the reason)")
    overwrite: bool = opt(False, "replace existing outputs")

    def validate(self) -> None:
        super().validate()
        if self.limit is not None:
            check_range("--limit", self.limit, 1)


@dataclass
class TeachConfig(TeachOptions, FilterConfig, TeachFiles):
    """``codeswitch teach``: the teacher, the filter and the files."""


@dataclass
class TeachResult(Result):
    """``OUT.summary.json``: pairs asked, outputs written and kept (per kind), reasons of the rejections."""

    pairs: int = 0
    written: int = 0
    kept: int = 0
    per_kind: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    teacher: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    filter: dict[str, Any] = field(default_factory=dict)


def run_teach(cfg: TeachConfig, teacher=None) -> TeachResult:
    """Teacher rows to ``out`` (JSONL, kept rows only unless ``keep_rejected``) and ``out``.summary.json.
    ``teacher``: a ready-made teacher (``write(pairs, kinds)``) instead of the one the config names."""
    from ..files import atomic_write_json, atomic_write_text
    from ..text.langid import check_languages

    check_languages({"--source-lang": cfg.source_lang, "--target-lang": cfg.target_lang})
    cfg.check_output("file")
    pairs = read_pairs(cfg.pairs)
    if cfg.limit is not None:
        pairs = pairs[:cfg.limit]
    rows, stats = teach(pairs, cfg, cfg, teacher)
    keep = rows if cfg.keep_rejected else [r for r in rows if r["rejected"] is None]
    if not keep:
        raise LangshiftError(f"the teacher's {len(rows)} outputs were all rejected ({stats['rejected']}); "
                             "loosen the filter (--min-target-spans, --max-switch-share) or check the teacher")
    atomic_write_text(cfg.out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep))
    stats |= {"teacher": cfg.teacher, "config": cfg.part(TeachOptions), "filter": cfg.part(FilterConfig)}
    atomic_write_json(f"{cfg.out}.summary.json", stats)
    return TeachResult(out=str(cfg.out), **stats)
