"""``langshift demo [--quick] [--out DIR]``: SmolLM2-135M-Instruct → Spanish, offline, end to end."""

from __future__ import annotations

import argparse
import json
import time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="take SmolLM2-135M-Instruct to Spanish offline, end to end (~1 h on 2 "
                                    "cores; --quick ~15 min); resumable; prints the report path last")
    p.add_argument("--quick", action="store_true", help="smaller tokenizer, a few hundred verses, a few steps, "
                                                        "small evaluation sets")
    p.add_argument("--out", default="./langshift-demo", help="run folder; rerun to resume (default: ./langshift-demo)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="STAGE.FIELD=VALUE",
                   help="override a field of the demo recipe (repeatable), e.g. lapt.max_steps=100")
    p.add_argument("--dry-run", action="store_true", help="print which stages would run or skip, and why")
    p.add_argument("--json", action="store_true", help="also print the result as JSON (before the report path)")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from .run import format_candidates, format_paired, format_table, run_demo

    start = time.perf_counter()
    result = run_demo(args.out, quick=args.quick, overrides=args.overrides, dry_run=args.dry_run)
    if args.dry_run:
        return 0
    if result["candidates"]:
        print(format_candidates(result["candidates"], result["chosen"]))
    print(format_table(result["table"]))
    if result.get("paired"):
        print(format_paired(result["paired"]))
    ran = [name for name, s in result["stages"].items() if s["status"] != "skipped"]
    print(f"{len(ran)} of {len(result['stages'])} stages ran in {time.perf_counter() - start:.0f} s"
          + (f" ({', '.join(ran)})" if ran else " (all done before)"))
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    print(result["report"])
    return 0
