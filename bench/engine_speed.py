"""Data stages on the engine (issue 11 part 4): SynCS and `codeswitch measure` throughput with 1 and 2 workers on
the KJV, and the peak memory of LAPT tokenisation, streamed versus the old list path, on a large text file.

  1. SynCS token replacement (density 0.5, nouns by the apertium tagger, apertium translator) through
     Dataset.map(num_proc) with 1 and 2 workers: sentences/s, CPU seconds, and whether the 2-worker output
     equals the 1-worker output record for record;
  2. `codeswitch measure` (fastText language ID + word frequencies) over the same verses, likewise (report and
     per-sentence labels compared);
  3. LAPT blocks of a synthetic text file (--mb MB of repeated verses, one verse a line) under the SmolLM2
     tokenizer, each way in a fresh subprocess: `pack_texts` over the lines in a list (before), `block_dataset`
     streamed (num_proc 1) and with Dataset.map(num_proc 2); peak RSS of the process and of its workers,
     wall time, and whether the blocks are identical.
The machine is shared: the load average is recorded beside each figure.

    python bench/engine_speed.py                       # the whole KJV (31,102 verses); a 200 MB file
    python bench/engine_speed.py --limit 2000 --mb 20  # quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "engine_speed.json"


def timed(fn) -> tuple[dict, object]:
    """Wall time, this process's CPU time (the pool workers' is not counted: datasets does not wait for them)
    and the load average before and after."""
    load0, cpu0, t0 = os.getloadavg()[0], time.process_time(), time.perf_counter()
    value = fn()
    return {"seconds": round(time.perf_counter() - t0, 3), "cpu_seconds_main_process": round(time.process_time() - cpu0, 3),
            "load_average_1min": [round(load0, 2), round(os.getloadavg()[0], 2)]}, value


def syncs_runs(verses: list[str], workers: list[int]) -> dict:
    from langshift.codeswitch.provenance import TokenCounter
    from langshift.codeswitch.syncs import Stats, SyncsOptions, summary, syncs
    from langshift.translate import get_translator

    out, reference = {}, None
    for n in workers:
        cfg = SyncsOptions(mix="extreme", type="token-repl", density=0.5, words="nouns", tagger="apertium", num_proc=n)
        translator, stats = get_translator("apertium", "en", "es"), Stats()
        fig, recs = timed(lambda t=translator, c=cfg, st=stats: [
            r.to_json() for r in syncs(verses, t, c, c.tagger, TokenCounter(), st)])
        getattr(translator.backend, "close", lambda: None)()
        s = summary(stats, cfg, TokenCounter())
        fig.update({k: s[k] for k in ("sentences", "modified", "words_switched", "translator_calls")})
        fig["sentences_per_second"] = round(s["sentences"] / fig["seconds"], 1)
        reference = recs if reference is None else reference
        fig["identical_to_first"] = recs == reference
        out[str(n)] = fig
        print("syncs", n, json.dumps(fig), flush=True)
    return out


def measure_runs(verses: list[str], workers: list[int]) -> dict:
    from langshift.codeswitch.measure import MeasureOptions, measure

    out, reference = {}, None
    for n in workers:
        fig, (rep, rows) = timed(lambda n=n: measure(verses, MeasureOptions(langs=["en", "es"], num_proc=n)))
        fig.update(sentences=rep["sentences"], code_switched=rep["code_switched"],
                   sentences_per_second=round(rep["sentences"] / fig["seconds"], 1))
        reference = (rep, rows) if reference is None else reference
        fig["identical_to_first"] = (rep, rows) == reference
        out[str(n)] = fig
        print("measure", n, json.dumps(fig), flush=True)
    return out


CHILD = r"""
import hashlib, json, resource, sys, time
from langshift.models import load_tokenizer
from langshift.resources import materialise_smollm2
how, path, cache, seq_len = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
tok = load_tokenizer(str(materialise_smollm2()))
t0 = time.perf_counter()
h, n = hashlib.sha256(), 0
if how == "list":
    from langshift.files import read_lines
    from langshift.train.data import pack_texts
    blocks = pack_texts(tok, read_lines(path), seq_len)
    for b in blocks:
        h.update(json.dumps(b).encode())
    n = len(blocks)
else:
    from langshift.train.data import block_dataset
    ds = block_dataset(path, tok, seq_len, cache, num_proc=1 if how == "stream" else 2)
    for batch in ds.iter(batch_size=1000):
        for b in batch["input_ids"]:
            h.update(json.dumps(b).encode())
            n += 1
own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": round(time.perf_counter() - t0, 1), "blocks": n, "sha256": h.hexdigest(),
                  "peak_rss_mib": round(own.ru_maxrss / 1024), "peak_rss_worker_mib": round(kids.ru_maxrss / 1024)}))
"""


def lapt_runs(verses: list[str], mb: int, seq_len: int, ways: list[str]) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="engine-speed.") as work:
        path = Path(work) / "big.txt"
        chunk = ("\n".join(verses) + "\n").encode()
        with open(path, "wb") as fh:
            while fh.tell() < mb * 2 ** 20:
                fh.write(chunk)
        out["file_mib"] = round(path.stat().st_size / 2 ** 20, 1)
        for how in ways:
            load0 = os.getloadavg()[0]
            proc = subprocess.run([sys.executable, "-c", CHILD, how, str(path), str(Path(work) / how), str(seq_len)],
                                  capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
            if proc.returncode:
                raise SystemExit(f"{how}: {proc.stderr[-2000:]}")
            fig = json.loads(proc.stdout.strip().splitlines()[-1])
            fig["load_average_1min"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
            out[how] = fig
            print("lapt", how, json.dumps(fig), flush=True)
    for how in ways:
        out[how]["identical_to_first"] = out[how]["sha256"] == out[ways[0]]["sha256"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="first N KJV verses for SynCS and measure (default: all)")
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--mb", type=int, default=200, help="size of the synthetic LAPT text file")
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--ways", nargs="+", default=["stream", "num_proc_2", "list"],
                    choices=["stream", "num_proc_2", "list"], help="LAPT tokenisation paths (the first: reference)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["syncs", "measure", "lapt"])
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()

    from langshift.files import atomic_write_json
    from langshift.resources import bible_verses

    verses = list(bible_verses("en").values())
    result: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                    "command": "python bench/engine_speed.py " + " ".join(sys.argv[1:]),
                    "verses": len(verses[:args.limit])}
    if "syncs" not in args.skip or "measure" not in args.skip:  # warm-up: apertium, fastText and imports loaded once
        syncs_runs(verses[:50], [1]), measure_runs(verses[:50], [1])
    if "syncs" not in args.skip:
        result["syncs_token_repl"] = syncs_runs(verses[:args.limit], args.workers)
    if "measure" not in args.skip:
        result["measure"] = measure_runs(verses[:args.limit], args.workers)
    if "lapt" not in args.skip:
        result["lapt_tokenisation"] = lapt_runs(verses, args.mb, args.seq_len, args.ways)
    atomic_write_json(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
