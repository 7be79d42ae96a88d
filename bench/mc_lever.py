"""The demo's MC lever (BENCHMARKS.md, "A sixth lever"): its inputs, and the paired comparison of models on them.

    python bench/mc_lever.py data --out DIR [--pairs 4000] [--items 200]
    python bench/mc_lever.py compare --dev DEV --tasks DIR/devmc.jsonl --models lever base original [--results F]
    python bench/mc_lever.py words --model D/transfer/model --base smollm2-135m-instruct --out WORDS

``data`` writes
* ``DIR/devmc.jsonl`` — translation and next-verse items built the way the demo's test MC set is, but from the
  demo's *select* chapters: settings are chosen on these, never on the test items.
* ``DIR/parallel.jsonl`` — English–Spanish verse pairs from the *train* chapters, one document each (English or
  Spanish first at random, so both directions are read), for ``langshift train lapt --code-switched``.
The demo's chapter split (``langshift.demo.inputs.split_chapters``) keeps both away from the held-out chapters.

``compare`` reads ``langshift eval mc --tasks DIR/devmc.jsonl --save DEV --name NAME`` results (and ``eval bpb``'s,
where there) and prints, then writes to ``bench/results/``, each model's accuracy per task and each model against
the next ones: the paired difference over the same items with its 95% bootstrap interval and the items only one of
the two got right.

``words`` writes a copy of an extended model (its files linked, not copied) whose tokenizer keeps the vocabulary and
ids but drops the merges the extension added and turns on BPE's ``ignore_merges``: a word whose whole string is a
token is that token, every other word is split by the base tokenizer's merges alone. A diagnostic: does the MC loss
come from words split into new pieces, or from the whole-word new rows?
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from langshift.files import atomic_write_json, atomic_write_text

RESULTS = Path(__file__).parent / "results"


def make_data(args: argparse.Namespace) -> None:
    from langshift.demo.inputs import SEED, parallel_documents, split_chapters
    from langshift.evaluate.builders import build_next_verse, build_translation
    from langshift.resources import bible_parallel

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    split = split_chapters(bible_parallel(args.source_lang, args.target_lang))
    mc = (build_translation(args.items, SEED, args.source_lang, args.target_lang, pairs=split["select"])
          + build_next_verse(args.items, SEED, args.source_lang, args.target_lang, pairs=split["select"]))
    atomic_write_text(out / "devmc.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mc))
    docs = [json.dumps(d, ensure_ascii=False) + "\n" for d in parallel_documents(split["train"], args.pairs)]
    atomic_write_text(out / "parallel.jsonl", "".join(docs))
    print({"dev_mc_items": len(mc), "parallel_pairs": len(docs), "train_verses": len(split["train"]),
           "select_verses": len(split["select"]), "out": str(out)})


def compare(args: argparse.Namespace) -> None:
    from langshift.evaluate.intervals import paired_difference
    from langshift.evaluate.report import per_item
    from langshift.evaluate.results import load_results

    items = [json.loads(line) for line in Path(args.tasks).read_text(encoding="utf-8").splitlines()]
    records = load_results(args.dev)
    scores, bpb = {}, {}
    for rec in records:
        if rec["kind"] == "mc" and Path(rec["config"]["tasks"]).name == Path(args.tasks).name:
            if [it["id"] for it in items] != [p["id"] for p in rec["result"]["predictions"]]:
                raise SystemExit(f"--tasks {args.tasks}: not the items {rec['path']} scored; give the task file "
                                 "the models were scored on")
            scores[rec["model"]] = per_item(rec)[1]
        elif rec["kind"] == "bpb":
            r = rec["result"]
            bpb[rec["model"]] = [round(r[k], 4) for k in ("bits_per_byte", "bits_per_byte_low", "bits_per_byte_high")]
    missing = [m for m in args.models if m not in scores]
    if missing:
        raise SystemExit(f"--models {' '.join(missing)}: no MC result on {args.tasks} in --dev {args.dev}; "
                         f"found {sorted(scores)}")
    tasks = sorted({it["task"] for it in items})
    groups = {"all": [True] * len(items)} | {t: [it["task"] == t for it in items] for t in tasks}

    def pick(name: str, task: str) -> list[float]:
        return [x for x, keep in zip(scores[name], groups[task], strict=True) if keep]

    accuracy = {m: {t: round(statistics.mean(pick(m, t)), 4) for t in groups} for m in args.models}
    pairs = {}
    for i, a in enumerate(args.models):
        for b, task in ((b, t) for b in args.models[i + 1:] for t in groups):
            xa, xb = pick(a, task), pick(b, task)
            d, lo, hi = paired_difference(xa, xb)
            only_a = sum(x > y for x, y in zip(xa, xb, strict=True))
            only_b = sum(y > x for x, y in zip(xa, xb, strict=True))
            pairs[f"{a} - {b} | {task}"] = {"difference": round(d, 4), "bootstrap_95": [round(lo, 4), round(hi, 4)],
                                            f"only_{a}": only_a, f"only_{b}": only_b, "n": len(xa)}
            print(f"{a} - {b} [{task}, n={len(xa)}]: {d:+.3f} [{lo:+.3f}, {hi:+.3f}] ({only_a}:{only_b})")
    for name in args.models:
        print(name, accuracy[name], "bits/byte", bpb.get(name, "—"))
    out = {"command": "python bench/mc_lever.py " + " ".join(sys.argv[1:]), "dev": str(args.dev), "tasks": args.tasks,
           "accuracy": accuracy, "bits_per_byte": {m: bpb[m] for m in args.models if m in bpb}, "paired": pairs}
    atomic_write_json(RESULTS / args.results, out)
    print("written", RESULTS / args.results)


def whole_words(args: argparse.Namespace) -> None:
    from langshift.resources import resolve_model

    model, out = Path(args.model), Path(args.out)
    tok = json.loads((model / "tokenizer.json").read_text(encoding="utf-8"))
    base = json.loads((Path(resolve_model(args.base)) / "tokenizer.json").read_text(encoding="utf-8"))
    merges, base_merges = tok["model"]["merges"], base["model"]["merges"]
    if tok["model"]["type"] != "BPE" or merges[:len(base_merges)] != base_merges:
        raise SystemExit(f"--model {model}: not a BPE extension of --base {args.base} (its merges do not start with "
                         "the base's); give a model made with `tokenizer.mode: extend`")
    tok["model"].update(merges=base_merges, ignore_merges=True)
    out.mkdir(parents=True, exist_ok=True)
    for f in model.iterdir():
        if f.is_file() and f.name != "tokenizer.json" and not (out / f.name).exists():
            (out / f.name).symlink_to(f.resolve())
    atomic_write_text(out / "tokenizer.json", json.dumps(tok, ensure_ascii=False))
    print({"base_merges": len(base_merges), "dropped_merges": len(merges) - len(base_merges),
           "vocab": len(tok["model"]["vocab"]), "out": str(out)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="action", required=True)
    d = sub.add_parser("data", help="write the dev MC items and the bilingual LAPT text")
    d.add_argument("--out", required=True, help="folder for devmc.jsonl and parallel.jsonl")
    d.add_argument("--pairs", type=int, default=4000, help="train-chapter verse pairs in parallel.jsonl")
    d.add_argument("--items", type=int, default=200, help="dev items per MC task (translation, next verse)")
    d.add_argument("--source-lang", default="en")
    d.add_argument("--target-lang", default="es")
    c = sub.add_parser("compare", help="paired dev-MC comparison of models scored by `langshift eval mc`")
    c.add_argument("--dev", required=True, help="the --save folder of `langshift eval mc` / `eval bpb`")
    c.add_argument("--tasks", required=True, help="the devmc.jsonl the models were scored on")
    c.add_argument("--models", nargs="+", required=True, help="--name of each model; every pair is compared, "
                   "each with the ones after it")
    c.add_argument("--results", default="mc_lever.json", help="results file name in bench/results")
    w = sub.add_parser("words", help="an extended model's copy that makes new tokens of whole words only")
    w.add_argument("--model", required=True, help="a model folder whose tokenizer extends --base's (BPE)")
    w.add_argument("--base", required=True, help="the base model (built-in name or folder)")
    w.add_argument("--out", required=True, help="folder for the copy (files linked, tokenizer.json rewritten)")
    args = ap.parse_args()
    {"data": make_data, "compare": compare, "words": whole_words}[args.action](args)


if __name__ == "__main__":
    main()
