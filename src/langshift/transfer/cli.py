"""``langshift transfer``: give a model a new tokenizer (thin layer over ``apply.run_transfer``)."""

from __future__ import annotations

import argparse
import json

from .config import TransferConfig

REQUIRED = ("model", "tokenizer", "out")


def register(subparsers) -> None:
    p = subparsers.add_parser("transfer", help="give a model a new tokenizer; initialise new embeddings by a "
                                               "named method (random, mean, fvt, focus, migrate, wechsel, salt)")
    p.add_argument("--model", required=True, help="source model: folder, hub id or smollm2-135m-instruct")
    p.add_argument("--tokenizer", required=True, help="target tokenizer folder (or model folder)")
    p.add_argument("--out", required=True, help="output folder for the new model")
    TransferConfig.add_arguments(p, skip=REQUIRED)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from .apply import run_transfer

    summary = run_transfer(TransferConfig.from_namespace(args))
    print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    return 0
