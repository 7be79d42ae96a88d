"""``langshift eval …`` and ``langshift report``: thin wrappers that load, call and print JSON."""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path


def register(sub) -> None:
    ev = sub.add_parser("eval", help="evaluate a model (bits per byte, multiple choice, MEXA, fidelity, judge, …)")
    tasks = ev.add_subparsers(dest="eval_command", metavar="TASK", required=True)

    p = tasks.add_parser("bpb", help="bits per byte of a text file (one document per line)")
    _model_args(p)
    p.add_argument("--text", required=True, help="UTF-8 text file, one document per line")
    p.add_argument("--max-length", type=int, default=None, help="window length in tokens (default: min(model "
                                                                  "limit, 1024))")
    p.add_argument("--stride", type=int, default=None, help="new tokens scored per window (default: max-length/2)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default: 8)")
    p.add_argument("--limit", type=int, default=None, help="score only the first N lines")
    _save_arg(p)
    p.set_defaults(func=_bpb)

    p = tasks.add_parser("mc", help="multiple choice by log-likelihood (JSONL task files or lm-eval tasks)")
    _model_args(p)
    p.add_argument("--tasks", required=True, nargs="+", help="JSONL task file(s) or lm-eval task names")
    p.add_argument("--lang", default="en", help="template language for items without a 'language' field")
    p.add_argument("--format", default="text", choices=["text", "letters"],
                   help="score each choice's text (default) or its label after a listed-options prompt")
    p.add_argument("--fallback-english", action="store_true",
                   help="use the English template for languages that have none (default: error)")
    p.add_argument("--include-path", default=None, help="folder of lm-eval task YAMLs (local data)")
    p.add_argument("--num-fewshot", type=int, default=None, help="lm-eval few-shot examples")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N items per task")
    _save_arg(p)
    p.set_defaults(func=_mc)

    p = tasks.add_parser("gen-mc", help="generative multiple choice: native prompt, greedy chat reply, "
                                        "answer extraction, up to 3 sampled regenerations")
    _model_args(p)
    p.add_argument("--tasks", required=True, help="JSONL task file")
    p.add_argument("--lang", default="en", help="prompt language for items without a 'language' field")
    p.add_argument("--fallback-english", action="store_true")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--regenerations", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--limit", type=int, default=None)
    _save_arg(p)
    p.set_defaults(func=_gen_mc)

    p = tasks.add_parser("mexa", help="MEXA per-layer alignment of parallel sentences")
    _model_args(p)
    _pairs_args(p)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--plot", default=None, help="also write the per-layer plot to this PNG")
    p.add_argument("--pooling", choices=["weighted", "last"], default="weighted",
                   help="sentence vector: position-weighted mean (MEXA) or the last token")
    p.add_argument("--blocks-only", action="store_true", help="score the block outputs only, not layer 0 "
                                                              "(the embedding output)")
    p.add_argument("--exclude-first", action="store_true", help="not MEXA: drop the first position (attention "
                                                                "sink) from the sentence vector")
    p.add_argument("--centre", action="store_true", help="not MEXA: subtract each language's mean vector "
                                                         "before the cosines")
    p.add_argument("--precision", choices=["model", "bfloat16"], default="model",
                   help="model = the model's own dtype; bfloat16 = bf16 autocast for the matrix products")
    _save_arg(p)
    p.set_defaults(func=_mexa)

    p = tasks.add_parser("fidelity", help="language fidelity (LPR, WPR, LCPR) of chat replies")
    _model_args(p, required=False)
    p.add_argument("--prompts", default=None, help="UTF-8 file, one prompt per line (generate replies)")
    p.add_argument("--responses", default=None, help="JSONL with 'response' (or 'output') per line: score "
                                                     "existing replies instead of generating")
    p.add_argument("--lang", required=True, help="expected language of the replies (ISO 639-1)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--sample", action="store_true", help="sample the replies (seed 004 App. B: temperature 0.6, "
                                                         "top-p 0.9) instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=None, help="with --sample (default: 0.6, seed 004)")
    p.add_argument("--top-p", type=float, default=None, help="with --sample (default: 0.9, seed 004)")
    p.add_argument("--seed", type=int, default=0, help="with --sample: sampling seed")
    p.add_argument("--system-prompt", default=None,
                   help="system turn before each prompt: text or 'same-language:<code>' (seed 004 App. F's "
                        "'Please answer in the same language as the input.' in that language)")
    p.add_argument("--min-words", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--limit", type=int, default=None)
    _save_arg(p)
    p.set_defaults(func=_fidelity)

    p = tasks.add_parser("judge", help="pairwise judge (OpenAI-compatible endpoint) of two models' outputs")
    p.add_argument("--outputs-a", required=True, help="JSONL of model A: instruction/prompt + output/response")
    p.add_argument("--outputs-b", required=True, help="JSONL of model B on the same instructions")
    p.add_argument("--url", default=None, help="endpoint base URL, e.g. http://127.0.0.1:8000/v1 "
                                               "(default: $LANGSHIFT_JUDGE_URL; none → skipped)")
    p.add_argument("--judge-model", default=None, help="judge model name at the endpoint")
    p.add_argument("--api-key-env", default=None, help="name of the environment variable holding the key")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-item order randomisation")
    p.add_argument("--lang", default=None, help="language of the instructions (a 'lang' field per line wins): 'en' "
                                                "gets the original AlpacaEval ranking prompt, any other language the "
                                                "prompt with seed 004's language clause (App. C; default: the clause)")
    p.add_argument("--retries", type=int, default=4)
    p.add_argument("--backoff", type=float, default=2.0, help="first retry wait in seconds (doubles)")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--verdicts", default=None, help="write per-item verdicts (JSONL) here as they come")
    p.add_argument("--name-a", default=None, help="label of model A (default: file name)")
    p.add_argument("--name-b", default=None, help="label of model B (default: file name)")
    p.add_argument("--save", default=None, metavar="RUN_DIR")
    p.set_defaults(func=_judge)

    p = tasks.add_parser("hidden", help="PCA / t-SNE view of middle-layer sentence vectors (PNG)")
    p.add_argument("--model", required=True, nargs="+", help="one or more models")
    _pairs_args(p)
    p.add_argument("--layer", type=int, default=None, help="block output to show (default: the middle)")
    p.add_argument("--method", default="pca", choices=["pca", "tsne"])
    p.add_argument("--out", required=True, help="PNG file to write")
    p.set_defaults(func=_hidden)

    p = tasks.add_parser("build", help="build an offline (synthetic) evaluation set from the parallel Bible")
    p.add_argument("--task", required=True, help="translation, next_verse or parallel")
    p.add_argument("--out", required=True, help="JSONL file to write")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="es")
    p.set_defaults(func=_build)

    rp = sub.add_parser("report", help="HTML report (plus PNGs and markdown) of evaluation run folders")
    rp.add_argument("runs", nargs="+", metavar="RUN_DIR", help="folders holding result JSON written with --save")
    rp.add_argument("--out", required=True, help="folder to write index.html, results.md and PNGs into")
    rp.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    rp.add_argument("--title", default="langshift report")
    rp.set_defaults(func=_report)


def _model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--model", required=required, help="model folder, hub id or 'smollm2-135m-instruct'")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the model's)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float64"],
                   help="weights' dtype (bfloat16 is several times faster on CPUs with AMX/AVX512-BF16)")


def _pairs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", default=None, help="JSONL with 'en' and 'xx' per line (from `eval build --task "
                                                 "parallel`); default: Bible verses")
    p.add_argument("--n", type=int, default=100, help="number of pairs (default 100)")
    p.add_argument("--tgt", default="es", help="target language of the built-in Bible pairs")
    p.add_argument("--seed", type=int, default=0)


def _read_pairs(args) -> list[tuple[str, str]]:
    from ..errors import ConfigError

    if args.n < 2:
        raise ConfigError("--n", args.n, "need at least 2 pairs")
    if args.pairs is None:
        from .builders import build

        return [(r["en"], r["xx"]) for r in build("parallel", args.n, args.seed, "en", args.tgt)]
    from .mexa import read_pairs

    return read_pairs(args.pairs, "--pairs", args.n)


def _read_jsonl(path, param: str) -> list[dict]:
    from ..files import read_json_lines

    return [obj for _, obj in read_json_lines(path, param)]


def _save_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--save", default=None, metavar="RUN_DIR",
                   help="also write the result as JSON into this run folder (read by `langshift report`)")
    p.add_argument("--name", default=None, help="label of the model in reports (default: the --model value)")


POSITIVE = ("batch_size", "max_length", "stride", "max_new_tokens", "n", "limit", "retries")
NON_NEGATIVE = ("regenerations", "min_words", "num_fewshot", "layer", "backoff", "timeout")


def _checked(handler):
    """Check the numbers and the --save folder before anything loads or runs: a bad --save found
    after a long evaluation would throw the evaluation away."""
    @functools.wraps(handler)
    def run(args) -> int:
        from ..config import check_range

        for names, lo in ((POSITIVE, 1), (NON_NEGATIVE, 0)):
            for name in names:
                if getattr(args, name, None) is not None:
                    check_range("--" + name.replace("_", "-"), getattr(args, name), lo)
        if getattr(args, "save", None):
            from ..errors import ConfigError

            save = Path(args.save)
            if save.exists() and not save.is_dir():
                raise ConfigError("--save", args.save, "is a file; give a run folder (created if missing) that "
                                                       "`langshift report` reads")
            if any(p.exists() and not p.is_dir() for p in save.parents):
                raise ConfigError("--save", args.save, "lies under a file, not a folder; give a run folder path")
        return handler(args)

    return run


def _load(args):
    from ..models import load_model, load_tokenizer

    tok = load_tokenizer(args.tokenizer or args.model, param="--tokenizer" if args.tokenizer else "--model")
    import torch

    return load_model(args.model, dtype=getattr(torch, args.dtype)), tok


def _limit(lines: list[str], limit: int | None) -> list[str]:
    from ..errors import ConfigError

    if limit is not None:
        if limit < 1:
            raise ConfigError("--limit", limit, "must be a positive number of lines")
        lines = lines[:limit]
    return lines


def _emit(args, kind: str, result: dict, config: dict, brief: tuple[str, ...] = (), tag: str | None = None) -> None:
    """Save the full result when asked (--save), print it without the bulky per-item fields."""
    if getattr(args, "save", None):
        from .results import save_result

        path = save_result(args.save, kind, result, model=args.name or args.model, config=config, tag=tag)
        result = {**result, "saved": str(path)}
    print(json.dumps({k: v for k, v in result.items() if k not in brief}, indent=2, ensure_ascii=False))


@_checked
def _bpb(args) -> int:
    from ..files import read_lines
    from .bpb import bits_per_byte

    texts = _limit(read_lines(args.text, param="--text"), args.limit)
    model, tok = _load(args)
    res = bits_per_byte(model, tok, texts, max_length=args.max_length, stride=args.stride,
                        batch_size=args.batch_size)
    res.pop("per_document")
    _emit(args, "bpb", res, {"text": args.text, "limit": args.limit})
    return 0


@_checked
def _mc(args) -> int:
    from .mc import evaluate_mc, load_items, run_lm_eval

    files = [t for t in args.tasks if t.endswith(".jsonl") or Path(t).is_file()]
    names = [t for t in args.tasks if t not in files]
    model, tok = _load(args)
    out: dict = {}
    for f in files:
        items = _limit(load_items(f), args.limit)
        res = evaluate_mc(model, tok, items, args.lang, args.format, args.batch_size, args.max_length,
                          args.fallback_english)
        if args.save:
            from .results import save_result

            save_result(args.save, "mc", res, args.name or args.model, {"tasks": f, "format": args.format,
                                                                          "lang": args.lang}, tag=Path(f).stem)
        res.pop("predictions")
        out[f] = res
    if names:
        res = run_lm_eval(model, tok, names, args.include_path, args.limit, args.batch_size, args.num_fewshot)
        if args.save:
            from .results import save_result

            save_result(args.save, "mc", res, args.name or args.model, {"tasks": names}, tag="lm_eval")
        out["lm_eval"] = res
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


@_checked
def _gen_mc(args) -> int:
    from .generative import evaluate_generative_mc
    from .mc import load_items

    items = _limit(load_items(args.tasks), args.limit)
    model, tok = _load(args)
    res = evaluate_generative_mc(model, tok, items, args.lang, args.max_new_tokens, args.regenerations, args.seed,
                                 args.batch_size, args.fallback_english)
    _emit(args, "gen_mc", res, {"tasks": args.tasks, "lang": args.lang, "max_new_tokens": args.max_new_tokens},
          brief=("predictions",))
    return 0


@_checked
def _mexa(args) -> int:
    from .mexa import mexa, plot_mexa

    pairs = _read_pairs(args)
    model, tok = _load(args)
    res = mexa(model, tok, pairs, args.batch_size, args.max_length, include_embeddings=not args.blocks_only,
               pooling=args.pooling, exclude_first=args.exclude_first, centre=args.centre, precision=args.precision)
    if args.plot:
        plot_mexa({args.name or args.model: res}, args.plot)
    _emit(args, "mexa", res, {"pairs": args.pairs or f"bible en-{args.tgt}", "n": len(pairs), "seed": args.seed})
    return 0


@_checked
def _fidelity(args) -> int:
    from ..errors import ConfigError
    from ..files import read_lines
    from ..text import langid
    from .fidelity import evaluate_fidelity, score_responses

    langid.check_language(args.lang, "--lang")  # the model's own labels, listed when --lang is not one
    if (args.prompts is None) == (args.responses is None):
        raise ConfigError("--prompts/--responses", None, "give exactly one: prompts to generate from, or a "
                                                         "JSONL of existing responses")
    if args.responses:
        rows = _limit(_read_jsonl(args.responses, "--responses"), args.limit)
        texts = [r.get("response", r.get("output")) for r in rows]
        if not all(isinstance(t, str) for t in texts):
            raise ConfigError("--responses", args.responses, "each line needs a string 'response' or 'output'")
        res = score_responses(texts, args.lang, min_words=args.min_words)
        args.model = args.model or args.responses
    else:
        if not args.model:
            raise ConfigError("--model", None, "needed to generate replies to --prompts")
        prompts = _limit(read_lines(args.prompts, "--prompts"), args.limit)
        model, tok = _load(args)
        from ..train.clo_data import resolve_system_prompt

        res = evaluate_fidelity(model, tok, prompts, args.lang, args.max_new_tokens, args.batch_size,
                                args.min_words, sample=args.sample, temperature=args.temperature, top_p=args.top_p,
                                seed=args.seed, system=resolve_system_prompt(args.system_prompt))
    _emit(args, "fidelity", res, {"prompts": args.prompts or args.responses, "lang": args.lang},
          brief=("per_response", "responses"))
    return 0


@_checked
def _judge(args) -> int:
    from ..errors import LangshiftError
    from ..files import atomic_write_text
    from .judge import JudgeError, compare, endpoint_from_args, read_outputs, summarise

    if args.verdicts:
        from ..files import check_out_file

        check_out_file(args.verdicts, True, "--verdicts", {"--outputs-a": args.outputs_a,
                                                           "--outputs-b": args.outputs_b})
    a, b = read_outputs(args.outputs_a, "--outputs-a"), read_outputs(args.outputs_b, "--outputs-b")
    shared = [k for k in a if k in b]
    if not shared:
        raise LangshiftError("--outputs-a/--outputs-b: the two files share no instruction; give both models' "
                             "outputs on the same prompts")
    name_a, name_b = args.name_a or Path(args.outputs_a).stem, args.name_b or Path(args.outputs_b).stem
    endpoint = endpoint_from_args(args.url, args.judge_model, args.api_key_env, retries=args.retries,
                                  backoff=args.backoff, timeout=args.timeout)
    if endpoint is None:
        print(json.dumps({"skipped": True, "reason": "no judge endpoint: pass --url (or set $LANGSHIFT_JUDGE_URL) "
                                                     "and --judge-model; no verdict was made up"}, indent=2))
        return 0
    done: list[dict] = []

    def keep(v):
        done.append(v)
        if args.verdicts:
            atomic_write_text(args.verdicts, "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in done))

    config = {"outputs_a": args.outputs_a, "outputs_b": args.outputs_b, "against": name_b,
              "judge": endpoint.model, "seed": args.seed, "lang": args.lang}
    langs = [a[k].get("lang", a[k].get("language", args.lang)) for k in shared]
    try:
        res = compare(shared, [a[k]["output"] for k in shared], [b[k]["output"] for k in shared],
                      endpoint.chat, args.seed, on_verdict=keep, langs=langs)
    except JudgeError as exc:
        if args.save and exc.partial:
            from .results import save_result

            save_result(args.save, "judge", {**summarise(exc.partial), "partial": True}, name_a, config,
                        tag=f"vs_{name_b}")
        raise
    res.update(model_a=name_a, model_b=name_b, missing_in_b=len(a) - len(shared))
    args.name, args.model = name_a, name_a
    _emit(args, "judge", res, config, brief=("verdicts",), tag=f"vs_{name_b}")
    return 0


@_checked
def _hidden(args) -> int:
    from ..files import check_out_file
    from ..models import load_model, load_tokenizer
    from .hidden import middle_layer_points, plot_points

    check_out_file(args.out, True, "--out", {"--model": args.model, "--pairs": args.pairs})
    pairs = _read_pairs(args)
    views = {}
    for name in args.model:
        views[name] = middle_layer_points(load_model(name), load_tokenizer(name, param="--model"), pairs,
                                          args.layer, args.method, args.seed)
    plot_points(views, args.out, args.tgt)
    print(json.dumps({"out": args.out, "models": args.model, "pairs": len(pairs), "method": args.method}))
    return 0


def _build(args) -> int:
    from ..files import atomic_write_text, check_out_file
    from .builders import build

    check_out_file(args.out)
    rows = build(args.task, args.n, args.seed, args.src, args.tgt)
    atomic_write_text(args.out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(json.dumps({"task": args.task, "out": args.out, "items": len(rows), "seed": args.seed,
                      "synthetic": True}))
    return 0


def _report(args) -> int:
    from ..files import check_out_dir
    from .report import build_report

    check_out_dir(args.out, args.overwrite, inputs={"RUN_DIR": args.runs})

    print(json.dumps(build_report(args.runs, args.out, args.overwrite, args.title), indent=2))
    return 0
