"""``langshift tokenizer train|extend|overlap``: thin wrappers over ``langshift.vocab``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..files import atomic_write_json, read_lines


def register(subparsers) -> None:
    from .train import ExtendConfig, TokenizerConfig

    top = subparsers.add_parser("tokenizer", help="train, extend or compare tokenizers (byte-exact overlap)")
    sub = top.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)

    train = sub.add_parser("train", help="train a target-language tokenizer keeping the base's specials and "
                                         "chat template")
    _io_flags(train, base_required=False)
    TokenizerConfig.add_arguments(train)
    train.set_defaults(func=_train)

    extend = sub.add_parser("extend", help="add target-language tokens to the base tokenizer (merged vocabulary)")
    _io_flags(extend, base_required=True)
    ExtendConfig.add_arguments(extend)
    extend.set_defaults(func=_extend)

    overlap = sub.add_parser("overlap", help="byte-exact overlap of two vocabularies (prints JSON)")
    overlap.add_argument("--source", required=True, help="source model/tokenizer folder, hub id or built-in name")
    overlap.add_argument("--target", required=True, help="target tokenizer folder, hub id or built-in name")
    overlap.add_argument("--report", type=Path, help="also write the JSON report to this file")
    overlap.add_argument("--examples", type=int, default=20, help="unmatched/ambiguous examples to list")
    overlap.set_defaults(func=_overlap)


def _io_flags(parser: argparse.ArgumentParser, base_required: bool) -> None:
    parser.add_argument("--text", type=Path, nargs="+", required=True, help="UTF-8 text file(s), one text a line")
    parser.add_argument("--base", required=base_required,
                        help="base model/tokenizer (folder, hub id or built-in name) whose special tokens and "
                             "chat template are kept")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the tokenizer to")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--fertility-text", type=Path, nargs="+",
                        help="text file(s) to measure fertility on (default: the training text)")


def _prepare(args: argparse.Namespace):
    from ..files import check_out_dir
    from ..models import load_tokenizer

    # fail before training, not after; an --out that is (or holds) an input would destroy it
    check_out_dir(args.out, args.overwrite, inputs={"--text": args.text, "--base": args.base,
                                                    "--fertility-text": args.fertility_text})
    base = load_tokenizer(args.base, "--base") if args.base else None
    texts = [line for path in args.text for line in read_lines(path, "--text")]
    sample = ([line for path in args.fertility_text for line in read_lines(path, "--fertility-text")]
              if args.fertility_text else texts)
    return base, texts, sample


def _summary(base, new, sample: list[str], out: Path) -> dict[str, Any]:
    from .fertility import fertility
    from .frame import frame_report
    from .overlap import compute_overlap

    summary: dict[str, Any] = {"out": str(out), "vocab_size": len(new), "fertility": {"new": fertility(new, sample)}}
    if base is not None:
        summary["fertility"]["base"] = fertility(base, sample)
        report = compute_overlap(base, new).report(examples=0)
        summary["overlap"] = {k: report[k] for k in ("matched", "matched_share", "new", "by_kind")}
        summary["chat_frame"] = frame_report(base, new)
    return summary


def _train(args: argparse.Namespace) -> int:
    from .train import TokenizerConfig, save_tokenizer, train_tokenizer

    cfg = TokenizerConfig.from_namespace(args)
    base, texts, sample = _prepare(args)
    tok = train_tokenizer(texts, cfg.kind, cfg.vocab_size, base, min_frequency=cfg.min_frequency,
                          show_progress=cfg.show_progress, keep_chat_frame=cfg.keep_chat_frame)
    save_tokenizer(tok, args.out, args.overwrite)
    print(json.dumps(_summary(base, tok, sample, args.out), indent=2, ensure_ascii=False))
    return 0


def _extend(args: argparse.Namespace) -> int:
    from .train import ExtendConfig, extend_tokenizer, save_tokenizer

    cfg = ExtendConfig.from_namespace(args)
    base, texts, sample = _prepare(args)
    tok = extend_tokenizer(base, texts, cfg.add, min_frequency=cfg.min_frequency, show_progress=cfg.show_progress)
    save_tokenizer(tok, args.out, args.overwrite)
    summary = _summary(base, tok, sample, args.out)
    summary["added"] = len(tok) - len(base)
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0


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
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0
