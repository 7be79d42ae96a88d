"""``langshift codeswitch migrate|syncs|mix|measure|score|ablate|teach|distill|synth``."""

from __future__ import annotations

import argparse
import json

from ..commands import Command, add_group
from ..files import check_not_input
from .ablate import AblateConfig, run_ablate
from .detect import DetectConfig, run_score
from .measure import MeasureConfig, run_measure
from .migrate import MigrateConfig, run_migrate
from .mixing import MixConfig, run_mix
from .syncs import SyncsConfig, run_syncs
from .synth import SynthConfig, run_synth

COMMANDS = [
    Command("migrate", MigrateConfig, run_migrate, "translate the nouns of sentences in place (MIGRATE)"),
    Command("syncs", SyncsConfig, run_syncs, "SynCS: token/sentence replacement/annotation at a density and budget"),
    Command("mix", MixConfig, run_mix, "SynCS §4.4: code-switch until each type has added its share of a budget of "
            "new tokens (equal, extreme, repl-equal), on either language side or both"),
    Command("synth", SynthConfig, run_synth, "SynCS §4.1: token-level code-switching of a corpus by the distilled "
            "student (same outputs as `codeswitch syncs`)"),
]


def register(sub: argparse._SubParsersAction) -> None:
    cmds = add_group(sub, "codeswitch", "make code-switched text (MIGRATE, SynCS) or measure it", COMMANDS)


    mea = cmds.add_parser("measure", help="count code-switching types in a corpus (SynCS §2)")
    mea.add_argument("--text", nargs="+", required=True, help="UTF-8 text files, one document per line")
    mea.add_argument("--out", help="write the report as JSON here")
    mea.add_argument("--labels-out", help="write one JSON line per sentence with its label")
    mea.add_argument("--translator", help="check annotations by translating them back (e.g. apertium)")
    mea.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    mea.add_argument("--on-bad", choices=["fail", "skip"], default="fail", help="non-UTF-8 lines: fail or skip")
    _measure_flags(mea)
    DetectConfig.add_arguments(mea)
    mea.set_defaults(func=_measure)

    sco = cmds.add_parser("score", help="precision and recall per code-switching type against labelled documents "
                                        "(same detectors as measure)")
    sco.add_argument("--gold", required=True, help="JSONL, one document a line: {\"text\": ..., \"label\": "
                                                   "token-repl|token-annt|sent-repl|sent-annt|none}")
    sco.add_argument("--out", help="write the scores as JSON here")
    sco.add_argument("--rows-out", help="write one JSON line per sentence with its label and evidence")
    sco.add_argument("--translator", help="check annotations by translating them back (e.g. apertium)")
    sco.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    _measure_flags(sco)
    DetectConfig.add_arguments(sco)
    sco.set_defaults(func=_score)

    abl = cmds.add_parser("ablate", help="SynCS §3.2: D_cs-free (code-switched documents replaced by clean ones) "
                                         "and D_control (as many random documents replaced)")
    abl.add_argument("--text", required=True, help="the corpus: UTF-8 text (one document a line) or .jsonl")
    abl.add_argument("--clean", help="pool of replacement documents (text or .jsonl; its code-switched ones are "
                                     "dropped); default: hold out clean documents of --text")
    abl.add_argument("--out", required=True, help="folder for original, cs-free and control corpora and "
                                                  "summary.json")
    abl.add_argument("--translator", help="check annotations by translating them back (e.g. apertium)")
    abl.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    abl.add_argument("--on-bad", choices=["fail", "skip"], default="fail", help="non-UTF-8 lines: fail or skip")
    AblateConfig.add_arguments(abl)
    _measure_flags(abl)
    abl.set_defaults(func=_ablate)
    _register_distilled(cmds)


def _measure_flags(p: argparse.ArgumentParser) -> None:
    MeasureConfig.add_arguments(p, skip=("langs",))
    p.add_argument("--langs", type=lambda s: [x.strip() for x in s.split(",") if x.strip()], default=["en", "es"],
                   help="comma-separated languages expected to mix (default: en,es)")


def _check_langs(codes: list[str]) -> None:
    from ..text.langid import check_languages

    for code in codes:
        check_languages({"--langs": code})


def _check_outputs(args: argparse.Namespace, outputs: dict) -> None:
    """Each output is a file path that is not one of the --text inputs (nor a folder holding one)."""
    from ..files import check_out_file

    for param, path in outputs.items():
        if path is not None:
            check_out_file(path, args.overwrite, param, {"--text": args.text})


def _back_translator(args: argparse.Namespace, cfg: MeasureConfig):
    if not args.translator:
        return None
    from ..translate import get_translator

    # annotations are in another language than the document: translate them back into the first language
    return get_translator(args.translator, cfg.langs[1], cfg.langs[0])


def _measure(args: argparse.Namespace) -> int:
    _check_langs(args.langs)
    _check_outputs(args, {"--out": args.out, "--labels-out": args.labels_out})
    cfg = MeasureConfig.from_namespace(args)
    result = run_measure(cfg, args.text, args.out, args.labels_out, args.overwrite, args.on_bad,
                         _back_translator(args, cfg), DetectConfig.from_namespace(args))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def _score(args: argparse.Namespace) -> int:
    from ..files import check_out_file

    _check_langs(args.langs)
    for param, path in {"--out": args.out, "--rows-out": args.rows_out}.items():
        if path is not None:
            check_out_file(path, args.overwrite, param, {"--gold": [args.gold]})
    cfg = MeasureConfig.from_namespace(args)
    result = run_score(cfg, DetectConfig.from_namespace(args), args.gold, args.out, args.rows_out, args.overwrite,
                       _back_translator(args, cfg))
    print(json.dumps({k: v for k, v in result.items() if k != "confusion"}, indent=2, ensure_ascii=False))
    return 0


def _ablate(args: argparse.Namespace) -> int:
    _check_langs(args.langs)
    check_not_input(args.out, {"--text": args.text, "--clean": args.clean})
    mcfg = MeasureConfig.from_namespace(args)
    result = run_ablate(AblateConfig.from_namespace(args), mcfg, args.text, args.out, args.clean, args.overwrite,
                        args.on_bad, _back_translator(args, mcfg))
    print(json.dumps({k: v for k, v in result.items() if k not in ("held_out", "replacements")} | {
        "corpora": {n: {k: v for k, v in c.items() if k != "replaced"} for n, c in result["corpora"].items()}},
        indent=2, ensure_ascii=False))
    return 0


# SynCS §4.1 distilled synthesiser: teach → distill → synth ------------------------------------------

def _register_distilled(cmds) -> None:
    from .distill import DistillConfig
    from .teach import FilterConfig, TeachConfig

    tea = cmds.add_parser("teach", help="SynCS §4.1: a teacher writes token-level code-switching from parallel "
                                        "sentences (App. C.1 prompts), filtered → JSONL rows")
    tea.add_argument("--pairs", required=True, help="parallel sentences: TSV (source<TAB>translation) or JSONL "
                                                    "(source/translation, src/tgt or en/xx fields)")
    tea.add_argument("--out", required=True, help="teacher rows (JSONL); a summary goes to OUT.summary.json")
    tea.add_argument("--limit", type=int, help="use only the first LIMIT pairs")
    tea.add_argument("--keep-rejected", action="store_true", help="also write rejected rows (with the reason)")
    tea.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    TeachConfig.add_arguments(tea)
    FilterConfig.add_arguments(tea)
    tea.set_defaults(func=_teach)

    dis = cmds.add_parser("distill", help="SynCS §4.1: fine-tune a small student on teacher rows (trl SFT, "
                                          "source-only prompt → code-switched sentence)")
    DistillConfig.add_arguments(dis)
    dis.set_defaults(func=_distill)


def _teach(args: argparse.Namespace) -> int:
    from .teach import FilterConfig, TeachConfig, run_teach

    _check_langs([args.source_lang, args.target_lang])
    result = run_teach(TeachConfig.from_namespace(args), FilterConfig.from_namespace(args), args.pairs, args.out,
                       args.overwrite, args.limit, args.keep_rejected)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def _distill(args: argparse.Namespace) -> int:
    from .distill import DistillConfig, train_distill

    cfg = DistillConfig.from_namespace(args)
    check_not_input(cfg.out, {"--data": [cfg.data]})
    print(train_distill(cfg))
    return 0
