"""Speed of code-switching and static-embedding training on the KJV Bible (English → Spanish).

Measures, on this machine:
  1. MIGRATE noun code-switching with the apertium tagger and translator: tokens/s (whitespace words of
     output; with --tokenizer, also that tokenizer's tokens) and translator calls per noun occurrence;
  2. SynCS token-replacement (density 0.5, nouns) likewise;
  3. fastText continued training on the code-switched text: words/s.
Prints the figures and writes them to bench/results/codeswitch_speed.json.

The machine is shared, so next to wall-clock speed each code-switching figure has its CPU time: this
process plus its subprocesses (apertium, workers; the kept ones are stopped and waited for first, so
their time counts), and the load average around the run. tokens_per_cpu_second is what the code costs;
tokens_per_second is what this run got from the machine.

    python bench/codeswitch_speed.py            # the whole Bible (~31k verses, ~790k words)
    python bench/codeswitch_speed.py --limit 3000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

from langshift.codeswitch.migrate import MigrateConfig, migrate
from langshift.codeswitch.migrate import Stats as MigrateStats
from langshift.codeswitch.migrate import summary as migrate_summary
from langshift.codeswitch.provenance import TokenCounter
from langshift.codeswitch.syncs import Stats as SyncsStats
from langshift.codeswitch.syncs import SyncsConfig, syncs
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="first N verses only (quick run)")
    ap.add_argument("--tagger", default="apertium")
    ap.add_argument("--num-proc", type=int, default=1, help="MIGRATE worker processes for splitting + tagging")
    ap.add_argument("--static-dim", type=int, default=300, help="fastText dimension for the training figure")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()

    verses = list(bible_verses("en").values())[: args.limit]
    counter = TokenCounter()
    result: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                    "verses": len(verses), "tagger": args.tagger, "translator": "apertium en->es (memory cache)",
                    "num_proc": args.num_proc}

    # 1. MIGRATE: a fresh translator (no disk cache) so every distinct noun really reaches apertium
    tagger = get_tagger(args.tagger, "en")
    translator = get_translator("apertium", "en", "es")
    cfg, st = MigrateConfig(tagger=args.tagger, num_proc=args.num_proc), MigrateStats()
    cs_lines: dict[int, list[str]] = {}
    cpu0, load0 = cpu_seconds(), os.getloadavg()[0]
    for rec in migrate(verses, tagger, translator, cfg, counter, st):
        cs_lines.setdefault(rec.doc, []).append(rec.sep + rec.text)
    for kept in (tagger, translator.backend):
        getattr(kept, "close", lambda: None)()
    m = migrate_summary(st, cfg, counter)
    result["migrate"] = {k: m[k] for k in ("sentences", "tokens", "source_words", "nouns", "distinct_nouns",
                                           "replaced", "untranslated", "unchanged", "translator_calls",
                                           "translator_requests", "seconds", "tokens_per_second")}
    result["migrate"]["translator_calls_per_noun_occurrence"] = round(st.translator_calls / max(st.selected, 1), 5)
    result["migrate"]["source_words_per_second"] = round(st.source_words / st.seconds)
    result["migrate"].update(cost(cpu0, load0, st.tokens))

    # 2. SynCS token replacement, half of the sentences, nouns
    translator = get_translator("apertium", "en", "es")
    scfg = SyncsConfig(mix="extreme", type="token-repl", density=0.5, words="nouns", tagger=args.tagger)
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
    cs = tokenise_lines("".join(parts) for _, parts in sorted(cs_lines.items()))
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
