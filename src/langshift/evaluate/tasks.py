"""Evaluation tasks by name: each reads its fields of the ``EvalConfig`` and scores one loaded model.

A task is ``run(model, tokenizer, cfg) -> (result, config)``: ``result`` is saved (``<kind>.<label>[.<tag>].json``,
:mod:`langshift.evaluate.results`) with ``config``, the settings the report shows. ``run_eval`` runs every task
the config asks for on every model; `langshift eval NAME` is one command per task (tasks naming the same
``command`` share it). A task from another package registers through the entry-point group
``langshift.eval_tasks`` (an ``EvalTask`` object, or a module that calls ``EVAL_TASKS.register``); it reads the
shared fields (``limit``, ``batch_size``, ``target_lang`` …) of the config it is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, LangshiftError
from ..files import read_json_lines, read_lines
from ..registry import Registry
from .config import EvalConfig, flag

Run = Callable[[Any, Any, EvalConfig], tuple[dict, dict]]


@dataclass(frozen=True)
class EvalTask:
    name: str                                   # its key in results; `langshift eval` names it with '-'
    kind: str                                   # the result file's kind (results.KINDS)
    run: Run
    given: Callable[[EvalConfig], bool]         # its input is set: a config naming no tasks runs every such task
    fields: tuple[str, ...]                     # the config fields it reads (its command offers them)
    help: str
    command: str | None = None                  # the `langshift eval` sub-command (default: the name, '-' for '_')
    tag: Callable[[EvalConfig], str | None] = lambda cfg: None  # the result file's tag
    each: Callable[[EvalConfig], list[EvalConfig]] | None = None  # one result per part (one per MC task file)
    uses_model: Callable[[EvalConfig], bool] = lambda cfg: True
    label: Callable[[EvalConfig], str] | None = None  # the result's label when it runs without a model
    builtin_input: bool = False                 # named in ``tasks``, it runs without its input (built-in data)
    bulky: tuple[str, ...] = ()                 # per-item fields left out of the returned result (saved in full)
    after: Callable[[EvalConfig, dict[str, dict]], None] | None = None  # with every model's result (a plot)

    @property
    def command_name(self) -> str:
        return self.command or self.name.replace("_", "-")


EVAL_TASKS: Registry[EvalTask] = Registry("eval task", modules=[__name__])
MODEL_FIELDS = ("model", "tokenizer", "dtype", "name", "baseline", "baseline_name", "intermediate",
                "intermediate_name")


def add_task(task: EvalTask) -> EvalTask:
    EVAL_TASKS.register(task.name)(task)
    return task


def head(items: list, cfg: EvalConfig, limit: int | None = None) -> list:
    limit = limit or cfg.limit
    return items[:limit] if limit else items


def needs(cfg: EvalConfig, field: str, why: str) -> Any:
    value = getattr(cfg, field)
    if value is None:
        raise ConfigError(flag(field), None, why)
    return value


# 1. Bits per byte ----------------------------------------------------------------------------------

def _bpb(model, tok, cfg: EvalConfig) -> tuple[dict, dict]:
    from .bpb import bits_per_byte

    limit = cfg.bpb_limit or cfg.limit
    texts = head(read_lines(cfg.bpb_text, flag("bpb_text")), cfg, limit)
    res = bits_per_byte(model, tok, texts, max_length=cfg.max_length, stride=cfg.stride, batch_size=cfg.batch_size)
    res.pop("per_document")
    return res, {"text": cfg.bpb_text, "limit": limit}


add_task(EvalTask("bpb", "bpb", _bpb, lambda c: bool(c.bpb_text),
                  ("bpb_text", "bpb_limit", "limit", "stride", "max_length", "batch_size"),
                  "bits per byte of a text file (one document per line)"))


# 2. Multiple choice: log-likelihood (our runner, lm-eval) and generative ---------------------------

def _is_file(task: str) -> bool:
    return task.endswith(".jsonl") or Path(task).is_file()


def _items(path: str, cfg: EvalConfig, field: str) -> list:
    from .mc import load_items

    items = head(load_items(path, flag(field)), cfg)
    if cfg.target_lang is None and any(it.language is None for it in items):
        raise ConfigError("--target-lang", None, f"{path} has items without a 'language' field: give the language "
                                                 "of their prompt template (e.g. --target-lang en)")
    return items


def _mc(model, tok, cfg: EvalConfig) -> tuple[dict, dict]:
    from .mc import evaluate_mc

    path = cfg.mc_tasks[0]
    res = evaluate_mc(model, tok, _items(path, cfg, "mc_tasks"), cfg.target_lang, cfg.mc_format, cfg.batch_size,
                      cfg.max_length or 1024, cfg.fallback_english)
    return res, {"tasks": path, "format": cfg.mc_format, "lang": cfg.target_lang}


add_task(EvalTask("mc", "mc", _mc, lambda c: any(map(_is_file, c.mc_tasks)),
                  ("mc_tasks", "mc_format", "target_lang", "fallback_english", "batch_size", "max_length", "limit"),
                  "multiple choice by log-likelihood (JSONL task files or lm-eval tasks)",
                  tag=lambda c: Path(c.mc_tasks[0]).stem,
                  each=lambda c: [replace(c, mc_tasks=[t]) for t in c.mc_tasks if _is_file(t)], bulky=("predictions",)))


def _lm_eval_names(cfg: EvalConfig) -> list[str]:
    return list(cfg.lm_eval_tasks) + [t for t in cfg.mc_tasks if not _is_file(t)]


def _lm_eval(model, tok, cfg: EvalConfig) -> tuple[dict, dict]:
    from .mc import run_lm_eval

    names = _lm_eval_names(cfg)
    res = run_lm_eval(model, tok, names, cfg.lm_eval_include_path, cfg.limit, cfg.batch_size, cfg.num_fewshot)
    return res, {"tasks": names}


add_task(EvalTask("lm_eval", "mc", _lm_eval, lambda c: bool(_lm_eval_names(c)),
                  ("lm_eval_tasks", "lm_eval_include_path", "num_fewshot", "limit", "batch_size"),
                  "lm-eval tasks by name (in `eval mc`: --tasks names that are not files)", command="mc",
                  tag=lambda c: "lm_eval"))


def _gen_mc(model, tok, cfg: EvalConfig) -> tuple[dict, dict]:
    from .generative import evaluate_generative_mc

    new = cfg.max_new_tokens or 256
    res = evaluate_generative_mc(model, tok, _items(cfg.gen_mc_tasks, cfg, "gen_mc_tasks"), cfg.target_lang, new,
                                 cfg.regenerations, cfg.seed, cfg.batch_size, cfg.fallback_english)
    return res, {"tasks": cfg.gen_mc_tasks, "lang": cfg.target_lang, "max_new_tokens": new}


add_task(EvalTask("gen_mc", "gen_mc", _gen_mc, lambda c: bool(c.gen_mc_tasks),
                  ("gen_mc_tasks", "target_lang", "fallback_english", "max_new_tokens", "regenerations", "seed",
                   "batch_size", "limit"),
                  "generative multiple choice: native prompt, greedy chat reply, answer extraction, up to 3 sampled "
                  "regenerations", bulky=("predictions",)))


# 3. MEXA alignment ---------------------------------------------------------------------------------

def read_pairs(path: str | None, n: int, seed: int, source_lang: str, target_lang: str | None) -> list[tuple[str, str]]:
    """The first ``n`` pairs of a JSONL of {en, xx} lines, or (no ``path``) ``n`` Bible verse pairs."""
    if path is None:
        from .builders import build

        if target_lang is None:
            raise ConfigError("--target-lang", None, "the built-in Bible pairs need the target language; give it "
                                                     "or --pairs")
        return [(r["en"], r["xx"]) for r in build("parallel", n, seed, source_lang, target_lang)]
    from .mexa import read_pairs as read_file

    return read_file(path, "--pairs", n)


def _mexa(model, tok, cfg: EvalConfig) -> tuple[dict, dict]:
    from .mexa import mexa

    pairs = read_pairs(cfg.mexa_pairs, cfg.mexa_n, cfg.seed, cfg.source_lang, cfg.target_lang)
    res = mexa(model, tok, pairs, cfg.batch_size, cfg.max_length or 128, include_embeddings=not cfg.blocks_only,
               pooling=cfg.pooling, exclude_first=cfg.exclude_first, centre=cfg.centre, precision=cfg.precision)
    where = cfg.mexa_pairs or f"bible {cfg.source_lang}-{cfg.target_lang}"
    return res, {"pairs": where, "n": len(pairs), "seed": cfg.seed}


def _plot_mexa(cfg: EvalConfig, results: dict[str, dict]) -> None:
    if cfg.plot:
        from .mexa import plot_mexa

        plot_mexa(results, cfg.plot)


add_task(EvalTask("mexa", "mexa", _mexa, lambda c: bool(c.mexa_pairs),
                  ("mexa_pairs", "mexa_n", "target_lang", "source_lang", "seed", "batch_size", "max_length", "pooling",
                   "blocks_only", "exclude_first", "centre", "precision", "plot"),
                  "MEXA per-layer alignment of parallel sentences", builtin_input=True, after=_plot_mexa))


# 4. Language fidelity of chat replies --------------------------------------------------------------

GENERATION = ("max_new_tokens", "sample", "temperature", "top_p", "seed", "draws", "system_prompt", "min_words",
              "batch_size", "limit")


def _fidelity_of(model, tok, cfg: EvalConfig, prompts_field: str, lang_field: str) -> tuple[dict, dict]:
    from ..text import langid
    from .fidelity import evaluate_fidelity, score_responses

    lang = needs(cfg, lang_field, "the expected language of the replies (ISO 639-1)")
    langid.check_language(lang, flag(lang_field))  # the model's own labels, listed when it is not one
    if prompts_field == "fidelity_prompts" and cfg.responses is not None:
        if cfg.fidelity_prompts is not None:
            raise ConfigError("--prompts/--responses", None, "give one: prompts to generate from, or a JSONL of "
                                                             "existing responses")
        rows = head([obj for _, obj in read_json_lines(cfg.responses, "--responses")], cfg)
        texts = [r.get("response", r.get("output")) for r in rows]
        if not all(isinstance(t, str) for t in texts):
            raise ConfigError("--responses", cfg.responses, "each line needs a string 'response' or 'output'")
        draws = drawn(rows) if rows and all("draw" in r for r in rows) else 1
        return (score_responses(texts, lang, min_words=cfg.min_words, draws=draws),
                {"prompts": cfg.responses, "lang": lang})
    from ..train.clo_data import resolve_system_prompt

    path = getattr(cfg, prompts_field)
    prompts = head(read_lines(path, flag(prompts_field)), cfg)
    res = evaluate_fidelity(model, tok, prompts, lang, cfg.max_new_tokens or 128, cfg.batch_size, cfg.min_words,
                            sample=cfg.sample, temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed,
                            system=resolve_system_prompt(cfg.system_prompt, lang=lang), draws=cfg.draws)
    return res, {"prompts": path, "lang": lang}


def drawn(rows: list[dict]) -> int:
    """The number of draws in saved replies that carry ``draw`` (as ``evaluate_fidelity`` writes them: draw after
    draw, the same prompts in the same order in each)."""
    draws = len({r["draw"] for r in rows})
    n = len(rows) // draws
    if len(rows) % draws or any(r["draw"] != i // n or r.get("prompt") != rows[i % n].get("prompt")
                                for i, r in enumerate(rows)):
        raise ConfigError("--responses", None, "replies with 'draw' must hold every prompt once per draw, draw 0 "
                                               "first, prompts in the same order (as `eval fidelity --save` writes)")
    return draws


add_task(EvalTask("fidelity", "fidelity", lambda m, t, c: _fidelity_of(m, t, c, "fidelity_prompts", "target_lang"),
                  lambda c: bool(c.fidelity_prompts or c.responses),
                  ("fidelity_prompts", "responses", "target_lang") + GENERATION,
                  "language fidelity (LPR, WPR, LCPR) of chat replies", uses_model=lambda c: c.responses is None,
                  label=lambda c: c.name or c.responses, bulky=("per_response", "responses")))
add_task(EvalTask("fidelity_source", "fidelity",
                  lambda m, t, c: _fidelity_of(m, t, c, "source_prompts", "source_lang"),
                  lambda c: bool(c.source_prompts), ("source_prompts", "source_lang") + GENERATION,
                  "language fidelity in the source language (does the model keep English?)", command="fidelity",
                  tag=lambda c: c.source_lang, bulky=("per_response", "responses")))


# 5. Pairwise judge of two models' outputs ----------------------------------------------------------

def _names(cfg: EvalConfig) -> tuple[str, str]:
    return cfg.name_a or Path(cfg.outputs_a).stem, cfg.name_b or Path(cfg.outputs_b).stem


def _judge(model, tok, cfg: EvalConfig) -> tuple[dict, dict]:
    from ..files import atomic_write_text, check_out_file
    from .judge import JudgeError, compare, endpoint_from_args, read_outputs, summarise
    from .results import save_result

    if cfg.verdicts:
        check_out_file(cfg.verdicts, True, "--verdicts", {"--outputs-a": cfg.outputs_a, "--outputs-b": cfg.outputs_b})
    a, b = read_outputs(cfg.outputs_a, "--outputs-a"), read_outputs(cfg.outputs_b, "--outputs-b")
    shared = [k for k in a if k in b]
    if not shared:
        raise LangshiftError("--outputs-a/--outputs-b: the two files share no instruction; give both models' "
                             "outputs on the same prompts")
    name_a, name_b = _names(cfg)
    endpoint = endpoint_from_args(cfg.url, cfg.judge_model, cfg.api_key_env, retries=cfg.retries,
                                  backoff=cfg.backoff, timeout=cfg.timeout)
    if endpoint is None:
        return {"skipped": True, "reason": "no judge endpoint: pass --url (or set $LANGSHIFT_JUDGE_URL) and "
                                           "--judge-model; no verdict was made up"}, {}
    done: list[dict] = []

    def keep(v):
        done.append(v)
        if cfg.verdicts:
            atomic_write_text(cfg.verdicts, "".join(json_line(x) for x in done))

    config = {"outputs_a": cfg.outputs_a, "outputs_b": cfg.outputs_b, "against": name_b,
              "judge": endpoint.model, "seed": cfg.seed, "lang": cfg.target_lang}
    langs = [a[k].get("lang", a[k].get("language", cfg.target_lang)) for k in shared]
    try:
        res = compare(shared, [a[k]["output"] for k in shared], [b[k]["output"] for k in shared],
                      endpoint.chat, cfg.seed, on_verdict=keep, langs=langs)
    except JudgeError as exc:
        if cfg.out and exc.partial:
            save_result(cfg.out, "judge", {**summarise(exc.partial), "partial": True}, name_a, config,
                        tag=f"vs_{name_b}")
        raise
    res.update(model_a=name_a, model_b=name_b, missing_in_b=len(a) - len(shared))
    return res, config


def json_line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


add_task(EvalTask("judge", "judge", _judge, lambda c: bool(c.outputs_a and c.outputs_b),
                  ("outputs_a", "outputs_b", "name_a", "name_b", "url", "judge_model", "api_key_env", "seed",
                   "target_lang", "retries", "backoff", "timeout", "verdicts"),
                  "pairwise judge (OpenAI-compatible endpoint) of two models' outputs",
                  tag=lambda c: f"vs_{_names(c)[1]}", uses_model=lambda c: False, label=lambda c: _names(c)[0],
                  bulky=("verdicts",)))
