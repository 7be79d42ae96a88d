"""Speed of code-switching and static-embedding training on the KJV Bible (English → Spanish).

Measures, on this machine:
  1. MIGRATE noun code-switching with the apertium translator, for each tagger of --taggers (apertium; vote =
     apertium + HanTa, MIGRATE's default) and each engine of --engines (datatrove: LocalPipelineExecutor
     tasks; datasets: Dataset.map num_proc), with 1 and 2 workers: tokens/s (whitespace words of output),
     tokens per CPU-second, translator calls per noun occurrence, and whether the 2-worker output equals
     the 1-worker output record for record;
  2. SynCS token-replacement (density 0.5, nouns) likewise;
  3. fastText continued training on the code-switched text: words/s.
Prints the figures and writes them to bench/results/codeswitch_speed.json.

The machine is shared, so next to wall-clock speed each code-switching figure has its CPU time: this
process plus its subprocesses (apertium, workers; the kept ones are stopped and waited for first, so
their time counts), and the load average around the run. tokens_per_cpu_second is what the code costs;
tokens_per_second is what this run got from the machine.

    python bench/codeswitch_speed.py                                # the whole Bible (~31k verses, ~790k words)
    python bench/codeswitch_speed.py --limit 3000 --taggers apertium --engines datasets
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

from langshift.codeswitch.migrate import MigrateOptions, migrate
from langshift.codeswitch.migrate import Stats as MigrateStats
from langshift.codeswitch.migrate import summary as migrate_summary
from langshift.codeswitch.provenance import TokenCounter
from langshift.codeswitch.syncs import Stats as SyncsStats
from langshift.codeswitch.syncs import SyncsOptions, syncs
from langshift.codeswitch.syncs import summary as syncs_summary
from langshift.files import atomic_write_json
from langshift.resources import bible_verses
from langshift.static import StaticConfig, continue_static, tokenise_lines, train_static
from langshift.text.tagging import get_tagger
from langshift.translate import get_translator

OUT = Path(__file__).parent / "results" / "codeswitch_speed.json"


def cpu_seconds() -> float:
    """CPU time of this process and of its waited-for children (user + system)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def cost(start_cpu: float, start_load: float, tokens: int) -> dict:
    cpu = cpu_seconds() - start_cpu
    return {"cpu_seconds": round(cpu, 3), "tokens_per_cpu_second": round(tokens / cpu),
            "load_average_1min": [round(start_load, 2), round(os.getloadavg()[0], 2)]}


def run_migrate_once(verses, tagger: str, engine: str, workers: int, counter, work: str) -> tuple[dict, list]:
    """One MIGRATE run through the engine; a fresh translator (no disk cache) so every distinct noun really
    reaches apertium; the tagger by name, so each worker builds its own."""
    translator = get_translator("apertium", "en", "es")
    cfg = MigrateOptions(tagger=tagger, num_proc=workers, engine=engine, tasks=workers,
                        work_dir=os.path.join(work, f"{tagger}-{engine}-{workers}"))
    st = MigrateStats()
    cpu0, load0 = cpu_seconds(), os.getloadavg()[0]
    records = [rec.to_json() for rec in migrate(verses, tagger, translator, cfg, counter, st)]
    getattr(translator.backend, "close", lambda: None)()
    m = migrate_summary(st, cfg, counter)
    out = {k: m[k] for k in ("sentences", "tokens", "source_words", "nouns", "distinct_nouns", "replaced",
                             "untranslated", "unchanged", "translator_calls", "translator_requests", "seconds",
                             "tokens_per_second")}
    out["translator_calls_per_noun_occurrence"] = round(st.translator_calls / max(st.selected, 1), 5)
    out["source_words_per_second"] = round(st.source_words / st.seconds)
    out.update(cost(cpu0, load0, st.tokens))
    return out, records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="first N verses only (quick run)")
    ap.add_argument("--taggers", nargs="+", default=["apertium", "vote"], help="MIGRATE taggers to measure")
    ap.add_argument("--engines", nargs="+", default=["datatrove"], choices=["datatrove", "datasets"])
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2], help="worker counts (the first is the "
                                                                          "reference output)")
    ap.add_argument("--skip-syncs", action="store_true", help="MIGRATE only (no SynCS, no fastText)")
    ap.add_argument("--static-dim", type=int, default=300, help="fastText dimension for the training figure")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()

    verses = list(bible_verses("en").values())[: args.limit]
    counter = TokenCounter()
    result: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                    "verses": len(verses), "translator": "apertium en->es (memory cache)",
                    "command": "python bench/codeswitch_speed.py " + " ".join(sys.argv[1:]), "migrate": {}}

    # 1. MIGRATE through the engine, 1 and 2 workers; the output must not change with the worker count
    cs_lines: dict[int, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="codeswitch-speed.") as work:
        for tagger in args.taggers:
            for engine in args.engines:
                runs, reference = {}, None
                for workers in args.workers:
                    figures, records = run_migrate_once(verses, tagger, engine, workers, counter, work)
                    if reference is None:
                        reference = records
                    figures["identical_to_first"] = records == reference
                    runs[str(workers)] = figures
                    print(tagger, engine, workers, json.dumps(figures), flush=True)
                result["migrate"].setdefault(tagger, {})[engine] = runs
                if not cs_lines:
                    for rec in reference:
                        doc = int(rec["id"].split(".")[0])
                        cs_lines.setdefault(doc, []).append(rec["text"])
    if args.skip_syncs:
        atomic_write_json(args.out, result)
        print(json.dumps(result, indent=2))
        return
    tagger = get_tagger(args.taggers[0], "en")

    # 2. SynCS token replacement, half of the sentences, nouns
    translator = get_translator("apertium", "en", "es")
    scfg = SyncsOptions(mix="extreme", type="token-repl", density=0.5, words="nouns", tagger=args.taggers[0])
    sst = SyncsStats()
    start, cpu0, load0 = time.perf_counter(), cpu_seconds(), os.getloadavg()[0]
    n_words = sum(len(r.text.split()) for r in syncs(verses, translator, scfg, tagger, counter, sst))
    for kept in (tagger, translator.backend):
        getattr(kept, "close", lambda: None)()
    seconds = time.perf_counter() - start
    s = syncs_summary(sst, scfg, counter)
    result["syncs_token_repl"] = {k: s[k] for k in ("sentences", "modified", "words_switched", "new_tokens",
                                                    "translator_calls", "translator_requests")}
    result["syncs_token_repl"].update(seconds=round(seconds, 3), tokens=n_words,
                                      tokens_per_second=round(n_words / seconds),
                                      translator_calls_per_switched_word=round(
                                          sst.translator_calls / max(sst.words_switched, 1), 5))
    result["syncs_token_repl"].update(cost(cpu0, load0, n_words))

    # 3. fastText: train on the English text, continue on the code-switched text (MIGRATE's step)
    sc = StaticConfig(dim=args.static_dim, workers=2)
    en = tokenise_lines(verses)
    cs = tokenise_lines(" ".join(parts) for _, parts in sorted(cs_lines.items()))
    space = train_static(en, sc)
    t_train = space.model.langshift_words_per_second
    start = time.perf_counter()
    space = continue_static(space, cs, sc)
    result["fasttext"] = {"dim": sc.dim, "workers": sc.workers, "epochs": sc.epochs, "bucket": sc.bucket,
                          "train_words_per_second": round(t_train),
                          "continue_words_per_second": round(space.model.langshift_words_per_second),
                          "continue_seconds_incl_vocab": round(time.perf_counter() - start, 3),
                          "continue_words": sum(map(len, cs)), "vocabulary_after": len(space)}

    atomic_write_json(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
