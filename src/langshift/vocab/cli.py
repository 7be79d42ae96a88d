"""``langshift tokenizer train|extend|overlap``: the tokenizer stage's front door as commands, and the
overlap report."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..commands import Command, add_group, print_json
from ..files import atomic_write_json
from .tokenizer import TokenizerConfig, run_tokenizer

COMMANDS = [
    Command("train", TokenizerConfig, run_tokenizer, "train a target-language tokenizer keeping the base's "
            "specials and chat template", skip=TokenizerConfig.EXTEND_ONLY, fixed={"mode": "train"}),
    Command("extend", TokenizerConfig, run_tokenizer, "add target-language tokens to the base tokenizer (merged "
            "vocabulary)", skip=TokenizerConfig.TRAIN_ONLY, fixed={"mode": "extend"}),
]


def register(subparsers) -> None:
    sub = add_group(subparsers, "tokenizer", "train, extend or compare tokenizers (byte-exact overlap)", COMMANDS)
    # Hand-written: overlap is a report on two given tokenizers, not a stage making an artefact folder.
    overlap = sub.add_parser("overlap", help="byte-exact overlap of two vocabularies (prints JSON)")
    overlap.add_argument("--source", required=True, help="source model/tokenizer folder, hub id or built-in name")
    overlap.add_argument("--target", required=True, help="target tokenizer folder, hub id or built-in name")
    overlap.add_argument("--report", type=Path, help="also write the JSON report to this file")
    overlap.add_argument("--examples", type=int, default=20, help="unmatched/ambiguous examples to list")
    overlap.set_defaults(func=_overlap)


def _overlap(args: argparse.Namespace) -> int:
    from ..config import check_range
    from ..files import check_out_file
    from ..models import load_tokenizer
    from .overlap import compute_overlap

    check_range("--examples", args.examples, 0)
    if args.report:
        check_out_file(args.report, True, "--report", {"--source": args.source, "--target": args.target})
    source = load_tokenizer(args.source, "--source")
    target = load_tokenizer(args.target, "--target")
    report = compute_overlap(source, target).report(examples=args.examples)
    if args.report:
        atomic_write_json(args.report, report)
    print_json(report)
    return 0
