"""SynCS §4.1 step 1: a teacher writes token-level code-switching from parallel sentences, then a filter.

The teacher sees a (source, translation) pair and the App. C.1 prompt for Token-Annt. or Token-Repl.;
its output is kept only when (1) the source's other words are all still there, in order — a
replacement swaps word runs, an annotation only adds "(…)" after a word; (2) every switched word
occurs in the translation (the target words really come from it); (3) enough switched spans are
identified as the target language (``text.langid``, fastText lid.176 — noisy on one word, so a
share, not all). Rows: {id, source, translation, kind, output, spans}.

Teachers: ``rule`` (offline default) — the SynCS word swapper (``syncs.eligible_words``/``build``)
with each word translation kept only if it occurs in the given translation; ``endpoint`` — an
OpenAI-compatible chat model (``evaluate.judge.Endpoint``); ``hf`` — a local causal LM.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

from ..config import StageConfig, check_range, opt
from ..errors import ConfigError, LangshiftError
from ..registry import Registry
from .provenance import Edit, check_share

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


# 2. Aligning an output with its source (pure) ---------------------------------------------------------

@dataclass
class Span:
    """One switch: source words [start, end) (character offsets in the source) and the target text."""
    start: int
    end: int
    source: str
    target: str


@dataclass
class Alignment:
    spans: list[Span] = field(default_factory=list)
    kept_in_order: bool = False       # every other source word is there, in order, nothing else added
    reason: str | None = None         # why not, when it is not
    switched_share: float = 0.0       # source words switched (repl) or annotated (annt) / source words

    def edits(self) -> list[Edit]:
        return [Edit(s.start, s.end, s.source, s.target) for s in self.spans]


def _keys(ws) -> list[str]:
    return [w.text.casefold() for w in ws]


def align(source: str, output: str, kind: str) -> Alignment:
    """How ``output`` derives from ``source`` under ``kind`` (word level, case-insensitive, punctuation aside)."""
    from ..text.units import words

    sw, ow = words(source), words(output)
    if not sw:
        return Alignment(reason="the source has no words")
    ops = difflib.SequenceMatcher(None, _keys(sw), _keys(ow), autojunk=False).get_opcodes()
    spans, switched = [], 0
    for op, i1, i2, j1, j2 in ops:
        if op == "equal":
            continue
        target = output[ow[j1].start:ow[j2 - 1].end] if j2 > j1 else ""
        if kind == "token-repl":
            if op != "replace":
                return Alignment(reason=f"source words {'dropped' if op == 'delete' else 'added'}: "
                                        f"{source[sw[i1].start:sw[i2 - 1].end] if op == 'delete' else target!r}")
            spans.append(Span(sw[i1].start, sw[i2 - 1].end, source[sw[i1].start:sw[i2 - 1].end], target))
            switched += i2 - i1
        else:  # token-annt: only "(…)" inserted right after a source word
            before, after = output[:ow[j1].start].rstrip(), output[ow[j2 - 1].end:].lstrip() if j2 > j1 else ""
            if op != "insert" or i1 == 0 or not before.endswith("(") or not after.startswith(")"):
                return Alignment(reason=f"not an annotation in parentheses after a source word: {op} at word {i1}")
            w = sw[i1 - 1]
            spans.append(Span(w.start, w.end, w.text, target))
            switched += 1
    share = switched / len(sw)
    if not spans:
        return Alignment(reason="nothing switched (the output repeats the source)")
    return Alignment(spans=spans, kept_in_order=True, switched_share=share)


def from_translation(span: Span, translation: str) -> bool:
    """Every word of the span's target text occurs in the translation (case-insensitive)."""
    from ..text.units import words

    have = set(_keys(words(translation)))
    return all(k in have for k in _keys(words(span.target)))


@dataclass
class FilterConfig(StageConfig):
    max_switch_share: float = opt(0.5, "most source words a token-level output may switch (more: sentence-level)")
    min_target_spans: float = opt(0.5, "least share of a row's switched spans that language ID must find likelier "
                                       "in the target than in the source language")
    require_translation: bool = opt(True, "every switched word must occur in the translation")

    def validate(self) -> None:
        check_share("max_switch_share", self.max_switch_share)
        check_share("min_target_spans", self.min_target_spans)


def span_languages(texts: Sequence[str], source_lang: str, target_lang: str) -> list[tuple[str, str]]:
    """(top-1 language, the likelier of source_lang/target_lang or "und") of each span under lid.176.

    Top-1 on one word is noisy ("casa" → it, "reyes" → en); between the two languages that mix, the
    likelier one is the useful decision, so the filter uses that and reports top-1 beside it."""
    from ..text import langid

    if not texts:
        return []
    # the pairwise choice needs both languages' probabilities, not only the top label
    ranked = langid.detect_top(texts, 40)
    out = []
    for labels in ranked:
        probs = dict(labels)
        a, b = probs.get(source_lang, 0.0), probs.get(target_lang, 0.0)
        out.append((labels[0][0] if labels else langid.UNDETERMINED,
                    langid.UNDETERMINED if a == b else (target_lang if b > a else source_lang)))
    return out


def check_rows(rows: Sequence[dict], source_lang: str, target_lang: str, fcfg: FilterConfig) -> list[dict]:
    """Each row ({source, translation?, kind, output}) with ``spans``, ``span_langs`` (top-1),
    ``span_pair_langs`` (src vs tgt) and ``rejected`` (None when it passes). Language ID runs once over
    every span of every row."""
    aligned = [align(r["source"], r["output"], r["kind"]) if r.get("output") else Alignment(reason="no output")
               for r in rows]
    langs = iter(span_languages([s.target for a in aligned for s in a.spans], source_lang, target_lang))
    out = []
    for r, a in zip(rows, aligned, strict=True):
        found = [next(langs) for _ in a.spans]
        top, pair = [t for t, _ in found], [p for _, p in found]
        reason = a.reason
        if reason is None and a.switched_share > fcfg.max_switch_share:
            reason = f"switched {a.switched_share:.0%} of the words (> max_switch_share)"
        if reason is None and fcfg.require_translation and r.get("translation") is not None:
            bad = [s.target for s in a.spans if not from_translation(s, r["translation"])]
            reason = f"not in the translation: {bad[:3]}" if bad else None
        if reason is None and sum(lg == target_lang for lg in pair) < fcfg.min_target_spans * len(a.spans):
            reason = f"span language {pair} (< min_target_spans {target_lang})"
        out.append({**r, "spans": [asdict(s) for s in a.spans], "span_langs": top, "span_pair_langs": pair,
                    "kept_in_order": a.kept_in_order, "switched_share": round(a.switched_share, 4),
                    "rejected": reason})
    return out


# 3. Teachers ------------------------------------------------------------------------------------------

TEACHERS: Registry[type] = Registry("code-switching teacher", modules=[__name__])


@dataclass
class TeachConfig(StageConfig):
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

    def __init__(self, cfg: TeachConfig):
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
        present = [set(_keys(words(t))) for _, t in pairs]
        # translate each distinct (word, tag) once; keep those found in the pair's translation
        keys = list(dict.fromkeys((w, t) for cs in cands for _, _, w, t in cs))
        tags = None if self.cfg.words == "random" else [t for _, t in keys]
        memo = dict(zip(keys, self.tr.translate_words([w for w, _ in keys], tags), strict=True)) if keys else {}
        out = []
        for n, ((src, _), cs, have, kind) in enumerate(zip(pairs, cands, present, kinds, strict=True)):
            found = [(c, memo.get((c[2], c[3]))) for c in cs]
            ok = [c for c, tr in found if tr and tr.casefold() != c[2].casefold()
                  and all(k in have for k in _keys(words(tr)))]
            picked = pick_words(ok, self.cfg.word_share, self.cfg.seed, str(n))
            text, edits = build(src, kind, picked, memo, None)
            out.append(text if edits else None)
        return out


@TEACHERS.register("endpoint")
class EndpointTeacher:
    """An OpenAI-compatible chat model asked with the App. C.1 prompt, one request per pair."""

    def __init__(self, cfg: TeachConfig):
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

    def __init__(self, cfg: TeachConfig):
        from ..models import load_model, load_tokenizer

        self.cfg = cfg
        self.tokenizer, self.model = load_tokenizer(cfg.model, "--model"), load_model(cfg.model, "--model").eval()

    def write(self, pairs: Sequence[tuple[str, str]], kinds: Sequence[str]) -> list[str | None]:
        from .synth import generate

        c = self.cfg
        prompts = [prompt(k, s, c.source_lang, c.target_lang, t) for (s, t), k in zip(pairs, kinds, strict=True)]
        replies, _ = generate(self.model, self.tokenizer, prompts, c.batch_size, c.max_new_tokens)
        return [clean_reply(r) for r in replies]


# 4. The stage -----------------------------------------------------------------------------------------

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


def teach(pairs: Sequence[tuple[str, str]], cfg: TeachConfig, fcfg: FilterConfig | None = None,
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


def run_teach(cfg: TeachConfig, fcfg: FilterConfig, pairs_path: str | os.PathLike, out: str | os.PathLike,
              overwrite: bool = False, limit: int | None = None, keep_rejected: bool = False) -> dict:
    """Teacher rows to ``out`` (JSONL, kept rows only unless ``keep_rejected``) and ``out``.summary.json."""
    from ..files import atomic_write_json, atomic_write_text, check_out_file

    check_out_file(out, overwrite, "--out", {"--pairs": [pairs_path]})
    pairs = read_pairs(pairs_path)
    if limit is not None:
        check_range("--limit", limit, 1)
        pairs = pairs[:limit]
    rows, stats = teach(pairs, cfg, fcfg)
    keep = rows if keep_rejected else [r for r in rows if r["rejected"] is None]
    if not keep:
        raise LangshiftError(f"the teacher's {len(rows)} outputs were all rejected ({stats['rejected']}); "
                             "loosen the filter (--min-target-spans, --max-switch-share) or check the teacher")
    atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep))
    stats |= {"teacher": cfg.teacher, "config": cfg.to_dict(), "filter": fcfg.to_dict()}
    atomic_write_json(f"{out}.summary.json", stats)
    return stats
