"""The ``langshift`` command: a thin layer over the stage functions.

Each sub-package that offers commands has a ``cli`` module with ``register(subparsers)``; this file
finds them, so adding a stage never means editing a central list. Every command's handler takes the
parsed namespace and returns an exit code (or None for 0).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import pkgutil
import sys

from . import __version__, registry
from .errors import LangshiftError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="langshift", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"langshift {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ls = sub.add_parser("ls", help="list every registered plugin (init methods, translators, taggers, …)")
    ls.set_defaults(func=_ls)

    import langshift

    for info in sorted(pkgutil.iter_modules(langshift.__path__), key=lambda m: m.name):
        if info.ispkg and importlib.util.find_spec(f"langshift.{info.name}.cli") is not None:
            importlib.import_module(f"langshift.{info.name}.cli").register(sub)
    return parser


def _ls(args: argparse.Namespace) -> int:
    _import_all_plugin_modules()
    for kind, reg in sorted(registry.ALL.items()):
        print(f"{kind}:")
        for name, obj in reg.items():
            # A plugin describes itself by a `help` attribute (e.g. pipeline stages) or its docstring.
            text = getattr(obj, "help", None) if isinstance(getattr(obj, "help", None), str) else obj.__doc__
            lines = (text or "").strip().splitlines()
            print(f"  {name:<18} {lines[0] if lines else ''}")
    return 0


def _import_all_plugin_modules() -> None:
    """Import every langshift module so that every Registry exists (registries load their plugins)."""
    import langshift

    for info in pkgutil.walk_packages(langshift.__path__, prefix="langshift."):
        if not info.name.endswith(".cli"):
            importlib.import_module(info.name)


def _one_writer(args: argparse.Namespace):
    """The lock on the command's ``--out`` for the whole run: a second process writing it fails at once."""
    from .files import out_lock

    out = getattr(args, "out", None)
    if not out or getattr(args, "dry_run", False):
        return contextlib.nullcontext()
    return out_lock(out, "--out")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        with _one_writer(args):
            code = args.func(args)
    except LangshiftError as exc:
        print(f"langshift {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
