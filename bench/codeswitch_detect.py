"""Code-switching detection (SynCS §2.2, App. A.1) scored against a labelled set: precision and recall per type.

The labelled set (bench/data/codeswitch_detect.{dev,test}.jsonl, built by this script with --build) is one
document a line, three consecutive KJV verses of which the middle one is modified (it and the verse before
end a sentence in English and in Spanish), plus hand-written
single sentences; every item knows its label because it was built to have it:
  - sent-annt:  the verse followed by its Spanish (RV1909) translation — in parentheses as SynCS writes it
                (``syncs.build``, group sent-annt/paren) or plainly after it (sent-annt/plain);
  - sent-repl:  the verse replaced by its translation (sent-repl/plain), or followed in parentheses by the
                translation of another, far verse (sent-repl/paren-other: the Spanish meaning is nowhere else);
  - token-annt / token-repl: ``syncs`` with apertium: nouns tagged by apertium, 30% of them translated word
                by word and annotated / replaced (``eligible_words``, ``pick_words``, ``build``);
  - none:       unmodified verses (none/bible), and hand-written sentences that fool a detector: loanwords
                and Spanish names in English (none/loanword-name), a third language (none/third-language)
                and noise (none/noise) — "unrelated" in the paper, not one of its four types.
dev and test use disjoint verses; dev holds sentence-level items only and fixes the encoder's threshold
(the midpoint that classifies dev best), which test then uses unchanged.

Detectors scored on test: the heuristic default; the sentence encoder = SmolLM2-135M-Instruct's middle-layer
mean-pooled hidden states, centred per language; the same plus the App. A.1 LLM token classifier with the
unrelated filter, run by SmolLM2 itself (local: the likelier of \\box(1)/\\box(2)).

    python bench/codeswitch_detect.py --build      # (re)build the labelled set, then score
    python bench/codeswitch_detect.py              # score the committed set
The encoder figure alone: langshift codeswitch score --gold bench/data/codeswitch_detect.test.jsonl \\
    --encoder smollm2-135m-instruct --threshold <dev threshold from the results file>
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
RESULT = ROOT / "results" / "codeswitch_detect.json"
MODEL = "smollm2-135m-instruct"

LOANWORDS_NAMES = [
    "We sat on the patio and watched the sunset over the canyon.",
    "The mosquito bites kept him awake all night in the cabin.",
    "The children played in the plaza while their parents shopped.",
    "He drove from Los Angeles to San Diego in four hours.",
    "A tornado touched down near the ranch on Tuesday.",
    "The rodeo in Santa Fe draws visitors from across the state.",
    "My neighbour José fixed the fence last weekend.",
    "The cafeteria serves tacos and burritos on Fridays.",
    "The armada sailed north in the summer of 1588.",
    "We took a siesta after lunch because of the heat.",
    "The vanilla ice cream melted before we reached the car.",
    "El Paso sits on the border between Texas and Mexico.",
    "The alligator slid into the water without a sound.",
    "The chocolate factory opened its doors to the public.",
    "Maria Rodriguez was elected mayor of the town last year.",
    "The potato harvest was poor because of the drought.",
    "Our company sponsored the fiesta at the community centre.",
    "The bonanza of oil made the small town rich overnight.",
    "The guerrilla fighters hid in the mountains for months.",
    "A mesa is a flat hill with steep sides and a wide top.",
    "The Rio Grande forms part of the border between the two countries.",
    "He ordered a latte and a croissant at the little cafe.",
    "The tomato plants need water every morning in July.",
    "They danced the tango until the band stopped playing.",
]
THIRD_LANGUAGE = [
    "The sign at the door said: Bitte nicht stören, wir arbeiten.",
    "She wrote in her diary. Je ne sais pas ce que je vais faire demain.",
    "The guide smiled. Questa è la chiesa più antica della città.",
    "He answered in Portuguese: Eu não tenho tempo para isso agora.",
    "The museum label read: Het schilderij werd gemaakt in 1642.",
    "Our host said: Vielen Dank für Ihren Besuch und bis bald.",
    "The chef insisted: Il faut laisser reposer la pâte une heure.",
    "The poster in Tokyo read 東京駅はこちらです and pointed left.",
    "The letter from Moscow began: Дорогой друг, как твои дела?",
    "She sang an old song: Nella fantasia io vedo un mondo giusto.",
    "My grandmother always said: Morgenstund hat Gold im Mund.",
    "He ended his email with: Tack så mycket för hjälpen.",
    "The menu said Dziękujemy za wizytę at the bottom.",
    "A plaque on the wall read: Ici est né le poète en 1802.",
    "The ticket explained: Dieser Fahrschein gilt nur heute.",
    "The sign read 禁止吸烟 in large red letters.",
]
NOISE = [
    "Click here: http://example.com/a7x9?q=zx_k2&id=9931 for more.",
    "The code was qwxz-ptrk-9912-lmno and nobody could read it.",
    "Error 0x80070005: access denied at C:\\Windows\\sys32\\drv.dll",
    "asdf jkl qwerty uiop zxcv bnm, typed the cat on the keyboard.",
    "The password hint was xkcd93!kq and it did not help.",
    "sudo apt-get install libfoo-dev && make -j4 && ./run --verbose",
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do",
    "ID: A3F9-22B1-CC90 | SKU: 77812-X | LOT: 2201B",
]


# 1. The labelled set ------------------------------------------------------------------------------

def build_sets(seed: int = 0) -> dict[str, list[dict]]:
    from langshift.codeswitch.syncs import build, eligible_words, pick_words
    from langshift.resources import bible_parallel
    from langshift.text.tagging import get_tagger
    from langshift.translate import get_translator

    verses = bible_parallel("en", "es")
    rng = random.Random(seed)
    # middles of non-overlapping triples, shuffled; dev and test take disjoint ones. The middle verse has 8-35
    # words, and it and the verse before end a sentence in both languages (many KJV verses end in ":" or ";",
    # and a verse swapped into the middle of a sentence is not sentence-level switching)
    def ends(i):
        return all(t.rstrip().endswith((".", "?", "!")) for t in verses[i][1:])

    middles = [i for i in range(1, len(verses) - 1, 3) if 8 <= len(verses[i][1].split()) <= 35
               and ends(i - 1) and ends(i)]
    rng.shuffle(middles)
    it = iter(middles)

    def doc(i: int, middle: str) -> str:
        return " ".join([verses[i - 1][1], middle, verses[i + 1][1]])

    def item(i, text, label, group, **kw):
        return {"text": text, "label": label, "group": group, "ref": verses[i][0], **kw}

    def far(i):
        return (i + len(verses) // 2) % len(verses)

    def sentence_items(n_annt_paren, n_annt_plain, n_repl_plain, n_repl_other):
        out = []
        for _ in range(n_annt_paren):
            i = next(it)
            out.append(item(i, doc(i, build(verses[i][1], "sent-annt", [], {}, verses[i][2])[0]), "sent-annt",
                            "sent-annt/paren"))
        for _ in range(n_annt_plain):
            i = next(it)
            out.append(item(i, doc(i, verses[i][1] + " " + verses[i][2]), "sent-annt", "sent-annt/plain"))
        for _ in range(n_repl_plain):
            i = next(it)
            out.append(item(i, doc(i, build(verses[i][1], "sent-repl", [], {}, verses[i][2])[0]), "sent-repl",
                            "sent-repl/plain"))
        for _ in range(n_repl_other):
            i = next(it)
            out.append(item(i, doc(i, f"{verses[i][1]} ({verses[far(i)][2]})"), "sent-repl", "sent-repl/paren-other"))
        return out

    dev = sentence_items(20, 10, 20, 10)
    test = sentence_items(35, 15, 35, 15)
    # token level: syncs' own steps, apertium nouns and word translations
    tagger, tr = get_tagger("apertium", "en"), get_translator("apertium", "en", "es")
    for kind in ("token-annt", "token-repl"):
        made = 0
        while made < 50:
            i = next(it)
            words = pick_words(eligible_words([verses[i][1]], "nouns", tagger)[0], 0.3, seed, verses[i][0])
            if not words:
                continue
            word_tr = dict(zip([(w, t) for _, _, w, t in words], tr.translate_words([w for _, _, w, _ in words],
                                                                                     [t for *_, t in words]),
                               strict=True))
            text, edits = build(verses[i][1], kind, words, word_tr, None)
            if not edits:
                continue
            test.append(item(i, doc(i, text), kind, kind, inserted=[e.translation for e in edits]))
            made += 1
    for _ in range(25):
        i = next(it)
        test.append(item(i, doc(i, verses[i][1]), "none", "none/bible"))
    for group, texts in (("none/loanword-name", LOANWORDS_NAMES), ("none/third-language", THIRD_LANGUAGE),
                         ("none/noise", NOISE)):
        test += [{"text": t, "label": "none", "group": group} for t in texts]
    return {"dev": dev, "test": test}


def write_sets(sets: dict[str, list[dict]]) -> None:
    from langshift.files import atomic_write_text

    for name, items in sets.items():
        atomic_write_text(DATA / f"codeswitch_detect.{name}.jsonl",
                          "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in items))


# 2. Scoring -------------------------------------------------------------------------------------------

def calibrate(rows: list[dict], gold: list[dict]) -> dict:
    """The threshold (midpoint between sorted dev similarities) with the most dev sentence-level items right."""
    pts = [(r["similarity"], gold[r["doc"]]["label"] == "sent-annt") for r in rows
           if r.get("similarity") is not None and gold[r["doc"]]["label"] in ("sent-annt", "sent-repl")]
    sims = sorted({s for s, _ in pts})
    cands = [(a + b) / 2 for a, b in zip(sims, sims[1:], strict=False)] or sims
    best = max(cands, key=lambda t: (sum((s >= t) == annt for s, annt in pts), -abs(t)))
    right = sum((s >= best) == annt for s, annt in pts)
    pos = [s for s, a in pts if a]
    neg = [s for s, a in pts if not a]
    return {"threshold": round(best, 4), "dev_pairs": len(pts), "dev_right": right,
            "dev_mean_similarity": {"annotation": round(sum(pos) / max(len(pos), 1), 4),
                                    "replacement": round(sum(neg) / max(len(neg), 1), 4)}}


def run(name, gold, mcfg, dcfg, encoder=None, choose=None) -> tuple[dict, list[dict]]:
    from langshift.codeswitch.detect import detect, predicted_sets, score

    t0 = time.perf_counter()
    rep, rows = detect([g["text"] for g in gold], mcfg, dcfg, encoder=encoder, choose=choose)
    res = score([g["label"] for g in gold], predicted_sets(rows, len(gold)), [g["group"] for g in gold])
    res |= {"detectors": rep["detectors"], "seconds": round(time.perf_counter() - t0, 1),
            "segments": {"counts": rep["counts"], "code_switched_shares": rep["code_switched_shares"]}}
    def v(x):
        return "-" if x is None else x["value"]

    print(f"{name}: exact {res['exact']['value']:.3f} " + " ".join(
        f"{t} P={v(p['precision'])} R={v(p['recall'])}" for t, p in res["per_label"].items()), file=sys.stderr)
    print("  by group: " + ", ".join(f"{g} {x['exact']}" for g, x in res["exact_by_group"].items()), file=sys.stderr)
    return res, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="store_true", help="rebuild the labelled set first")
    ap.add_argument("--no-llm", action="store_true", help="skip the LLM token classifier run")
    args = ap.parse_args()
    import torch

    from langshift.codeswitch.classify import LocalChooser
    from langshift.codeswitch.detect import DetectConfig, load_encoder, read_gold
    from langshift.codeswitch.measure import MeasureOptions
    from langshift.models import load_model, load_tokenizer

    torch.set_num_threads(1)   # the machine is shared: one thread was 3-10x faster than two under load
    if args.build or not (DATA / "codeswitch_detect.test.jsonl").is_file():
        write_sets(build_sets())
    dev, test = (read_gold(DATA / f"codeswitch_detect.{n}.jsonl") for n in ("dev", "test"))
    mcfg = MeasureOptions(langs=["en", "es"])
    out: dict = {"model": MODEL, "items": {"dev": len(dev), "test": len(test)}, "runs": {}}
    out["runs"]["heuristic"], _ = run("heuristic", test, mcfg, DetectConfig())
    encoder = load_encoder(MODEL)
    _, dev_rows = run("encoder on dev (threshold -1)", dev, mcfg, DetectConfig(threshold=-1.0), encoder=encoder)
    cal = calibrate(dev_rows, dev)
    out["calibration"] = cal | {"layer": encoder.layer}
    dcfg = DetectConfig(encoder=MODEL, threshold=cal["threshold"])
    out["runs"]["encoder"], _ = run("encoder", test, mcfg, dcfg, encoder=encoder)
    if not args.no_llm:
        chooser = LocalChooser(load_model(MODEL, "--llm"), load_tokenizer(MODEL, "--llm"), batch_size=8)
        out["runs"]["encoder+llm"], rows = run("encoder+llm", test, mcfg,
                                               DetectConfig(encoder=MODEL, threshold=cal["threshold"], llm=MODEL),
                                               encoder=encoder, choose=chooser)
    from langshift.files import atomic_write_json

    atomic_write_json(RESULT, out)
    print(json.dumps({k: {t: (v["precision"] or {}).get("value") for t, v in r["per_label"].items()}
                      for k, r in out["runs"].items()}, indent=1))


if __name__ == "__main__":
    main()
