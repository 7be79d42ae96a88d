"""``langshift run RECIPE [--set stage.field=value] [--out DIR] [--dry-run]`` and ``langshift recipes``."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run a recipe (YAML file or shipped name): resumable, skips finished stages")
    run.add_argument("recipe", help="recipe file, or the name of a shipped recipe (`langshift recipes`)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="STAGE.FIELD=VALUE",
                     help="override a field (repeatable): lapt.lr=5e-5, inputs.target_text=wiki.txt, vars.target_lang=de")
    run.add_argument("--out", default=None, help="run folder (default: runs/<recipe name>)")
    run.add_argument("--dry-run", action="store_true", help="print which stages would run, skip or re-run, and why")
    run.add_argument("--json", action="store_true", help="print the result as JSON at the end")
    run.set_defaults(func=_run)

    rec = sub.add_parser("recipes", help="list the shipped recipes, or validate recipe files")
    rec.add_argument("files", nargs="*", help="recipe files or names to validate (default: list shipped ones)")
    rec.add_argument("--set", dest="overrides", action="append", default=[], metavar="STAGE.FIELD=VALUE")
    rec.set_defaults(func=_recipes)


def _run(args: argparse.Namespace) -> int:
    from ..files import check_not_input
    from .recipe import load_recipe
    from .runner import run_recipe

    out = args.out
    if out is not None:
        check_not_input(out, {"recipe": args.recipe})
    if out is None:  # the default folder is locked here; an explicit --out is locked by the main command
        out = f"runs/{load_recipe(args.recipe, args.overrides).name}"
        if not args.dry_run:
            from ..files import out_lock

            with out_lock(out, "--out"):
                result = run_recipe(args.recipe, out, args.overrides, dry_run=args.dry_run)
            return _print_result(args, result)
    return _print_result(args, run_recipe(args.recipe, out, args.overrides, dry_run=args.dry_run))


def _print_result(args: argparse.Namespace, result) -> int:
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return 0


def _recipes(args: argparse.Namespace) -> int:
    from .recipe import load_recipe, shipped_recipes, validate_recipe

    if not args.files:
        for name in shipped_recipes():
            lines = load_recipe(name).description.strip().splitlines()
            print(f"{name:<24} {lines[0] if lines else ''}")
        return 0
    for f in args.files:
        print(json.dumps(validate_recipe(f, args.overrides), ensure_ascii=False))
    return 0
