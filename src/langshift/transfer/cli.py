"""``langshift transfer``: give a model a new tokenizer (thin layer over ``apply.run_transfer``)."""

from __future__ import annotations

import argparse
import json

from .config import TransferConfig

REQUIRED = ("model", "tokenizer", "out")
INPUTS = ("model", "tokenizer", "aux_fasttext", "aux_text", "aux_model", "source_fasttext", "source_text",
          "dictionary")


def register(subparsers) -> None:
    p = subparsers.add_parser("transfer", help="give a model a new tokenizer; initialise new embeddings by a "
                                               "named method (random, mean, fvt, focus, migrate, wechsel, salt)")
    p.add_argument("--model", required=True, help="source model: folder, hub id or smollm2-135m-instruct")
    p.add_argument("--tokenizer", required=True, help="target tokenizer folder (or model folder)")
    p.add_argument("--out", required=True, help="output folder for the new model")
    TransferConfig.add_arguments(p, skip=REQUIRED)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..files import check_out_dir, check_out_file
    from .apply import run_transfer

    cfg = TransferConfig.from_namespace(args)
    inputs = {"--" + name.replace("_", "-"): getattr(cfg, name) for name in INPUTS}
    check_out_dir(cfg.out, cfg.overwrite, inputs=inputs)
    if cfg.provenance:
        check_out_file(cfg.provenance, True, "--provenance", inputs)
    _check_specials(cfg)
    summary = run_transfer(cfg)
    print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    return 0


def _check_specials(cfg: TransferConfig) -> None:
    """The target tokenizer holds the model's eos/bos/pad and chat markers (before the model loads)."""
    from ..models import load_tokenizer
    from ..vocab.specials import check_target_specials

    check_target_specials(load_tokenizer(cfg.model, "--model"), load_tokenizer(cfg.tokenizer, "--tokenizer"),
                          "--tokenizer", cfg.tokenizer)
