"""The distilled SynCS token-level synthesiser (seed 003 §4.1) on held-out Bible verses, vs the rule swapper.

1. teach:   the offline rule teacher (apertium word translations of nouns, kept only where they occur in
            the verse's Spanish translation) writes token-repl/token-annt rows for --train-pairs verses; the
            filter keeps some; the first --rows of them are the SFT data.
2. distill: SmolLM2-135M-Instruct, LoRA (r 16) on the attention projections, --steps optimizer steps.
3. synth:   the student code-switches --n-eval held-out English verses (disjoint from the training verses)
            from the source-only prompt, greedy, batched; the same verses go through the rule-based swapper
            (`codeswitch syncs` token-repl, nouns, apertium; no translation given) and, as a reference, the
            teacher (which is given the translation).
Measured per system, with 95% Wilson intervals: share of outputs that keep the verse's other words in order
with a token-level switch (<= half the words); share of switched spans identified as Spanish by lid.176
(top-1, and Spanish-likelier-than-English); share of spans whose words occur in the reference translation;
share passing the whole teach filter; generation throughput (tokens/s). Writes
bench/results/codeswitch_synth.json.

    python bench/codeswitch_synth.py                       # 800 training pairs, 400 rows, 80 steps, 500 held out
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import sys
import time
from pathlib import Path

from langshift.codeswitch.provenance import TokenCounter
from langshift.codeswitch.syncs import Stats, SyncsOptions, syncs
from langshift.codeswitch.synth import Student, SynthConfig
from langshift.codeswitch.teach import TeachOptions, teach
from langshift.codeswitch.teach_filter import FilterConfig, check_rows
from langshift.evaluate.intervals import wilson
from langshift.resources import bible_parallel, materialise_smollm2

ROOT = Path(__file__).resolve().parent


def share(k: int, n: int) -> dict:
    lo, hi = wilson(k, n) if n else (None, None)
    return {"k": k, "n": n, "share": round(k / n, 4) if n else None,
            "ci95": [round(lo, 4), round(hi, 4)] if n else None}


def measure(rows: list[dict]) -> dict:
    """Figures over checked rows (check_rows output; translation = the reference)."""
    n = len(rows)
    ok = [r for r in rows if r["kept_in_order"] and r["switched_share"] <= 0.5]
    spans = [(s, lg, pl) for r in ok for s, lg, pl in zip(r["spans"], r["span_langs"], r["span_pair_langs"],
                                                          strict=True)]
    from langshift.codeswitch.teach_filter import Span, from_translation

    in_tr = sum(from_translation(Span(**s), r["translation"]) for r in ok for s in r["spans"])
    reasons: dict[str, int] = {}
    for r in rows:
        if r["rejected"]:
            key = r["rejected"].split(":")[0].split("(")[0].split("[")[0].strip()
            reasons[key] = reasons.get(key, 0) + 1
    return {"outputs": n,
            "kept_in_order_token_level": share(len(ok), n),
            "unchanged_copies": share(sum(r["output"] is not None and r["output"].strip() == r["source"].strip()
                                          for r in rows), n),
            "spans": len(spans), "spans_per_kept_output": round(len(spans) / len(ok), 3) if ok else None,
            "span_lang_top1_target": share(sum(lg == "es" for _, lg, _ in spans), len(spans)),
            "span_lang_target_over_source": share(sum(pl == "es" for _, _, pl in spans), len(spans)),
            "span_words_in_reference_translation": share(in_tr, len(spans)),
            "passes_whole_filter": share(sum(r["rejected"] is None for r in rows), n),
            "rejected_by": reasons}


def cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-pairs", type=int, default=800)
    ap.add_argument("--rows", type=int, default=400)
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--n-eval", type=int, default=500)
    ap.add_argument("--n-annt", type=int, default=0, help="also evaluate token-annt on this many held-out verses")
    ap.add_argument("--gen-budget-s", type=float, default=600.0,
                    help="stop the student's generation (in chunks of 32 verses) after this many seconds")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: on a shared, loaded machine two "
                                                           "threads spin against each other and run slower)")
    ap.add_argument("--max-chars", type=int, default=160, help="verses of 30..MAX characters (both sides)")
    ap.add_argument("--work", default="/tmp/langshift_cs_synth")
    ap.add_argument("--reuse", action="store_true", help="keep a student already distilled in --work")
    ap.add_argument("--out", default=str(ROOT / "results" / "codeswitch_synth.json"))
    a = ap.parse_args()
    __import__("torch").set_num_threads(a.threads)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "torch_threads": __import__("torch").get_num_threads(),
                                "load_before": os.getloadavg()}, "args": vars(a)}

    # 0. verse pairs, shuffled once; training and held-out verses are disjoint slices
    pairs = [(ref, e, s) for ref, e, s in bible_parallel("en", "es")
             if 30 <= len(e) <= a.max_chars and 30 <= len(s) <= a.max_chars]
    random.Random(0).shuffle(pairs)
    train, held = pairs[:a.train_pairs], pairs[a.train_pairs:a.train_pairs + a.n_eval]
    assert not {r for r, _, _ in train} & {r for r, _, _ in held}

    # 1. teach
    t0, c0 = time.perf_counter(), cpu()
    rows, tstats = teach([(e, s) for _, e, s in train], TeachOptions())
    kept = [r for r in rows if r["rejected"] is None][:a.rows]
    data = work / "rows.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), encoding="utf-8")
    result["teach"] = {**tstats, "used_rows": len(kept), "seconds": round(time.perf_counter() - t0, 1),
                       "cpu_seconds": round(cpu() - c0, 1),
                       "examples": [{k: r[k] for k in ("kind", "source", "output")} for r in kept[:4]]}
    print(json.dumps(result["teach"], indent=1, ensure_ascii=False), flush=True)

    # 2. distill
    student_dir = work / "student"
    if not (a.reuse and (student_dir / "train_summary.json").is_file()):
        from langshift.codeswitch.distill import DistillConfig, run_distill

        shutil.rmtree(student_dir, ignore_errors=True)
        shutil.rmtree(work / "student.work", ignore_errors=True)
        t0, c0 = time.perf_counter(), cpu()
        run_distill(DistillConfig(model=str(materialise_smollm2()), data=str(data), out=str(student_dir),
                                  max_steps=a.steps, save_steps=1000, overwrite=True))
        wall, cpus = time.perf_counter() - t0, cpu() - c0
    else:
        wall = cpus = None
    summ = json.loads((student_dir / "train_summary.json").read_text())
    log = [json.loads(x) for x in (student_dir / "train_log.jsonl").read_text().splitlines()]
    losses = [x["loss"] for x in log if "loss" in x]
    result["distill"] = {"steps": summ["global_step"], "rows": summ["rows"], "epochs": round(log[-1]["epoch"], 2),
                         "trainable_parameters": summ["trainable_parameters"], "seconds": wall,
                         "cpu_seconds": cpus, "loss_first": losses[0], "loss_last5_mean": sum(losses[-5:]) / 5,
                         "config": {k: summ["config"][k] for k in ("mode", "lora_r", "lora_alpha", "lr", "batch_size",
                                                                    "warmup", "max_len")}}
    print(json.dumps(result["distill"], indent=1), flush=True)

    # 3. the three systems on the held-out verses
    src = [e for _, e, _ in held]
    ref = [s for _, _, s in held]
    fcfg = FilterConfig()
    result["systems"] = {}
    evals = [("token-repl", len(held))] + ([("token-annt", min(a.n_annt, len(held)))] if a.n_annt else [])
    student = Student(SynthConfig(model=str(student_dir), batch_size=16, max_new_tokens=160))
    samples = {}
    for kind, n in evals:
        t0, c0, l0 = time.perf_counter(), cpu(), os.getloadavg()
        outs, ntok = [], 0
        while len(outs) < n and time.perf_counter() - t0 < a.gen_budget_s:
            got, k = student.write(src[len(outs):min(n, len(outs) + 32)], [kind] * min(32, n - len(outs)))
            outs, ntok = outs + got, ntok + k
        wall, cpus, n = time.perf_counter() - t0, cpu() - c0, len(outs)
        if kind == "token-repl":  # the rule swapper and the teacher get the verses the student got to
            src, ref = src[:n], ref[:n]
        checked = check_rows([{"source": s, "translation": t, "kind": kind, "output": o}
                              for s, t, o in zip(src[:n], ref[:n], outs, strict=True)], "en", "es", fcfg)
        result["systems"][f"student/{kind}"] = {
            **measure(checked), "generated_tokens": ntok, "seconds": round(wall, 1), "cpu_seconds": round(cpus, 1),
            "tokens_per_second": round(ntok / wall, 1), "tokens_per_cpu_second": round(ntok / cpus, 1),
            "sentences_per_second": round(n / wall, 2), "verses_generated": n, "load_during": [l0, os.getloadavg()]}
        samples[f"student/{kind}"] = outs[:8]
        print(kind, json.dumps(result["systems"][f"student/{kind}"], indent=1), flush=True)

    # rule-based swapper, source only: exactly `codeswitch syncs --mix extreme --type token-repl --density 1`
    from langshift.text.tagging import get_tagger
    from langshift.translate import get_translator

    cfg = SyncsOptions(mix="extreme", type="token-repl", density=1.0, words="nouns", word_share=0.3)
    t0, c0 = time.perf_counter(), cpu()
    recs = list(syncs(src, get_translator("apertium", "en", "es"), cfg, get_tagger("apertium", "en"),
                      TokenCounter(), Stats()))
    wall, cpus = time.perf_counter() - t0, cpu() - c0
    docs = [""] * len(src)
    for r in recs:
        docs[r.doc] += r.sep + r.text
    checked = check_rows([{"source": s, "translation": t, "kind": "token-repl", "output": o}
                          for s, t, o in zip(src, ref, docs, strict=True)], "en", "es", fcfg)
    result["systems"]["rule-swapper/token-repl"] = {**measure(checked), "seconds": round(wall, 1),
                                                     "cpu_seconds": round(cpus, 1)}
    samples["rule-swapper/token-repl"] = docs[:8]
    # the teacher, given the translation (an upper reference, not a competitor)
    trows, _ = teach(list(zip(src, ref, strict=True)), TeachOptions(kinds=["token-repl"]))
    result["systems"]["teacher-with-translation/token-repl"] = measure(trows)
    samples["teacher-with-translation/token-repl"] = [r["output"] for r in trows[:8]]
    result["samples"] = [{"source": s, **{k: v[i] for k, v in samples.items()}} for i, s in enumerate(src[:8])]
    result["machine"]["load_after"] = os.getloadavg()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, s in result["systems"].items():
        print(f"{name:40s} kept {s['kept_in_order_token_level']['share']} es(top1) "
              f"{s['span_lang_top1_target']['share']} es>en {s['span_lang_target_over_source']['share']} "
              f"in-ref {s['span_words_in_reference_translation']['share']} filter {s['passes_whole_filter']['share']}")
    print("wrote", a.out, file=sys.stderr)


if __name__ == "__main__":
    main()
