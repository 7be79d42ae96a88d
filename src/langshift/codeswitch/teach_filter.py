"""The filter of the code-switching teacher's outputs (SynCS §4.1 step 1, ``codeswitch teach``).

An output is kept only when (1) the source's other words are all still there, in order — a replacement
swaps word runs, an annotation only adds "(…)" after a word (``align``); (2) every switched word occurs
in the translation (``from_translation``); (3) enough switched spans are identified as the target language
(``span_languages``, fastText lid.176: a share, since it is noisy on one word). ``check_rows`` applies the
three to a batch of rows.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from ..config import StageConfig, opt
from .provenance import Edit, check_share

# 1. Aligning an output with its source (pure) ---------------------------------------------------------

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


def word_keys(ws) -> list[str]:
    return [w.text.casefold() for w in ws]


def align(source: str, output: str, kind: str) -> Alignment:
    """How ``output`` derives from ``source`` under ``kind`` (word level, case-insensitive, punctuation aside)."""
    from ..text.units import words

    sw, ow = words(source), words(output)
    if not sw:
        return Alignment(reason="the source has no words")
    ops = difflib.SequenceMatcher(None, word_keys(sw), word_keys(ow), autojunk=False).get_opcodes()
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

    have = set(word_keys(words(translation)))
    return all(k in have for k in word_keys(words(span.target)))


@dataclass
class FilterConfig(StageConfig):
    max_switch_share: float = opt(0.5, "most source words a token-level output may switch (more: sentence-level)")
    min_target_spans: float = opt(0.5, "least share of a row's switched spans that language ID must find likelier "
                                       "in the target than in the source language")
    require_translation: bool = opt(True, "every switched word must occur in the translation")

    def validate(self) -> None:
        super().validate()
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
