"""``langshift static train|continue``: fastText vectors from text files."""

from __future__ import annotations

import argparse
import json

from ..files import check_out_dir, read_lines
from .fasttext import StaticConfig, continue_static, load_static, tokenise_lines, train_static


def register(sub: argparse._SubParsersAction) -> None:
    static = sub.add_parser("static", help="static (fastText) embeddings: train, continue training")
    cmds = static.add_subparsers(dest="static_command", metavar="ACTION", required=True)

    train = cmds.add_parser("train", help="train fastText vectors from scratch on text files")
    _io_flags(train)
    StaticConfig.add_arguments(train)
    train.set_defaults(func=_train)

    cont = cmds.add_parser("continue", help="continue training a fastText model (e.g. on code-switched text)")
    cont.add_argument("--model", required=True, help="folder from `static train` or a Facebook fastText .bin")
    _allow_pickle_flag(cont)
    _io_flags(cont)
    StaticConfig.add_arguments(cont, skip=("dim", "sg", "minn", "maxn", "window", "negative", "bucket", "lowercase"))
    cont.set_defaults(func=_continue)

    conv = cmds.add_parser("convert", help="rewrite a static space (e.g. an old gensim pickle, with --allow-pickle) "
                                           "as a folder that loads without unpickling")
    conv.add_argument("--model", required=True, help="static-space folder, Facebook .bin, .vec, or gensim pickle")
    _allow_pickle_flag(conv)
    conv.add_argument("--out", required=True, help="output folder (written atomically)")
    conv.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    conv.set_defaults(func=_convert)


def _allow_pickle_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-pickle", action="store_true",
                   help="also load gensim's own pickled format (model.gensim, vectors.kv). Unpickling runs any code "
                        "the file carries: use only for files you trust, and `static convert` them once")


def _io_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text", nargs="+", required=True, help="UTF-8 text files, one document or sentence per line")
    p.add_argument("--out", required=True, help="output folder (written atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--on-bad", choices=["fail", "skip"], default="fail",
                   help="a line that is not UTF-8: fail naming it, or skip it with a warning")


def _read(args: argparse.Namespace, lowercase: bool) -> list[list[str]]:
    lines = [line for path in args.text for line in read_lines(path, "--text", on_bad=args.on_bad)]
    return tokenise_lines(lines, lowercase)


def _report(space, args) -> int:
    print(json.dumps({"out": str(args.out), "words": len(space), "dim": space.dim,
                      "words_per_second": round(getattr(space.model, "langshift_words_per_second", 0.0))}))
    return 0


def _train(args: argparse.Namespace) -> int:
    check_out_dir(args.out, args.overwrite, inputs={"--text": args.text})
    cfg = StaticConfig.from_namespace(args)
    space = train_static(_read(args, cfg.lowercase), cfg)
    space.save(args.out, overwrite=args.overwrite)
    return _report(space, args)


def _continue(args: argparse.Namespace) -> int:
    check_out_dir(args.out, args.overwrite, inputs={"--text": args.text, "--model": args.model})
    cfg = StaticConfig.from_namespace(args)
    space = load_static(args.model, trainable=True, allow_pickle=args.allow_pickle)
    space = continue_static(space, _read(args, space.lowercase), cfg)
    space.save(args.out, overwrite=args.overwrite)
    return _report(space, args)


def _convert(args: argparse.Namespace) -> int:
    check_out_dir(args.out, args.overwrite)
    space = load_static(args.model, allow_pickle=args.allow_pickle)  # a .bin is copied as it is
    space.save(args.out, overwrite=args.overwrite)
    return _report(space, args)
