"""``langshift translate``: translate a file's lines (words or sentences) with any backend, cached.

Hand-written flags: a utility over one translator call, not a pipeline stage (no artefact a recipe wires on).
"""

from __future__ import annotations

import argparse
import json

from ..errors import ConfigError
from ..files import atomic_write_text, read_lines
from .base import TRANSLATORS, get_translator


def register(subparsers) -> None:
    p = subparsers.add_parser("translate", help="translate the lines of a file (words or sentences)",
                              description=__doc__)
    p.add_argument("--backend", required=True, help=f"translator: {', '.join(TRANSLATORS.names())}")
    p.add_argument("--source-lang", required=True, help="source language code, e.g. en")
    p.add_argument("--target-lang", required=True, help="target language code, e.g. es")
    unit = p.add_mutually_exclusive_group()
    unit.add_argument("--words", dest="unit", action="store_const", const="words",
                      help="each line is one word (inflection kept where the backend can)")
    unit.add_argument("--sentences", dest="unit", action="store_const", const="sentences",
                      help="each line is one sentence (default)")
    p.add_argument("--in", dest="inp", required=True, help="UTF-8 text file, one item a line")
    p.add_argument("--out", required=True, help="output: .jsonl (source, translation) or text (one a line; "
                                                "an item the backend cannot translate is copied unchanged)")
    p.add_argument("--cache", default=None, help="sqlite cache file shared across runs (default: none)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="backend option, repeatable (e.g. model=facebook/nllb-200-distilled-600M); "
                        "values are read as JSON when they parse")
    p.set_defaults(func=run, unit="sentences")


def parse_options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError("--option", pair, "write KEY=VALUE, e.g. --option batch_size=16")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def run(args: argparse.Namespace) -> int:
    from ..files import check_out_file

    check_out_file(args.out, True, "--out", {"--in": args.inp, "--cache": args.cache})
    items = read_lines(args.inp, param="--in")
    translator = get_translator(args.backend, args.source_lang, args.target_lang, cache=args.cache,
                                **parse_options(args.option))
    if args.unit == "words":
        found = translator.translate_words([w.strip() for w in items])
    else:
        found = translator.translate_sentences(items)
    if args.out.endswith(".jsonl"):
        text = "".join(json.dumps({"source": s, "translation": t}, ensure_ascii=False) + "\n"
                       for s, t in zip(items, found, strict=True))
    else:
        text = "".join((t if t is not None else s) + "\n" for s, t in zip(items, found, strict=True))
    atomic_write_text(args.out, text)
    print(json.dumps({"out": args.out, "items": len(items), **translator.stats}))
    return 0
