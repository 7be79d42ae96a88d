"""The evaluation's one config (``EvalConfig``) and result (``EvalResult``): what `langshift eval TASK …` and
a recipe's eval stage both give ``run_eval``.

Sections: the models (roles and labels), which tasks run, the languages, where results go, the options
shared by tasks, then each task's own fields (named by the task in :mod:`langshift.evaluate.tasks`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ..config import Result, StageConfig, check_range, opt
from ..errors import ConfigError

ROLES = ("baseline", "intermediate", "model")  # before → after: the order models are evaluated and reported


@dataclass
class EvalConfig(StageConfig):
    INPUTS: ClassVar = ("model", "tokenizer", "baseline", "intermediate", "bpb_text", "mc_tasks", "gen_mc_tasks",
                        "mexa_pairs", "fidelity_prompts", "source_prompts", "responses", "outputs_a", "outputs_b")
    # 1. Models: the model, and before it an optional baseline and intermediate model, each with a label
    model: str | None = opt(None, "model folder, hub id or 'smollm2-135m-instruct' (a recipe: its last model)")
    tokenizer: str | None = opt(None, "tokenizer folder (default: each model's own)")
    dtype: Literal["float32", "bfloat16", "float64"] = opt(
        "float32", "weights' dtype (bfloat16 is several times faster on CPUs with AMX/AVX512-BF16)")
    name: str | None = opt(None, "label of --model in results and reports (default: the --model value; a recipe: "
                                 "the stage that made it)")
    baseline: str | None = opt(None, "also evaluate this model first (e.g. the source model) for comparison")
    baseline_name: str = opt("baseline", "label of --baseline")
    intermediate: str | None = opt(None, "also evaluate a model made on the way (e.g. @lapt when a recipe goes on "
                                         "to clo), after the baseline")
    intermediate_name: str | None = opt(None, "label of --intermediate (default: 'intermediate'; a recipe: the "
                                              "stage that made it)")
    # 2. Tasks and languages
    tasks: list[str] = opt([], "evaluation tasks to run (default: every task whose input is given; "
                               "`langshift ls` lists them)")
    target_lang: str | None = opt(None, "target language (ISO 639-1): expected language of fidelity replies, "
                                        "prompt templates of MC items without a 'language' field, the built-in "
                                        "Bible pairs, the judge's prompt (none: the language clause)")
    source_lang: str = opt("en", "source language: of source_prompts' replies and of the Bible pairs' other side")
    # 3. Results
    out: str | None = opt(None, "run folder to write one result JSON per model and task into (read by `langshift "
                                "report`); a result already there is kept unless --overwrite", flag="--save")
    overwrite: bool = opt(False, "recompute results that exist in the run folder")
    # 4. Shared options
    limit: int | None = opt(None, "evaluate only the first N items (lines, prompts, pairs) of each task")
    batch_size: int = opt(8, "sequences per forward pass")
    max_length: int | None = opt(None, "longest window in tokens (default: bpb min(model limit, 1024), mc 1024, "
                                       "mexa 128)")
    max_new_tokens: int | None = opt(None, "tokens generated per reply (default: fidelity 128, gen-mc 256)")
    seed: int = opt(0, "seed of sampling, the judge's order randomisation and the built-in Bible pairs")
    # 5. bpb
    bpb_text: str | None = opt(None, "UTF-8 text file, one document per line", flag="--text")
    bpb_limit: int | None = opt(None, "score only the first N lines of the text (default: --limit)")
    stride: int | None = opt(None, "new tokens scored per window (default: max-length/2)")
    # 6. mc, lm_eval, gen_mc
    mc_tasks: list[str] = opt([], "JSONL task file(s) or lm-eval task names", flag="--tasks")
    mc_format: Literal["text", "letters"] = opt("text", "score each choice's text, or its label after a "
                                                        "listed-options prompt", flag="--format")
    fallback_english: bool = opt(False, "use the English template for languages that have none (default: error)")
    lm_eval_tasks: list[str] = opt([], "lm-eval task names (e.g. arc_es, truthfulqa_es_mc1, m_mmlu_es)")
    lm_eval_include_path: str | None = opt(None, "folder of lm-eval task YAMLs (local data)", flag="--include-path")
    num_fewshot: int | None = opt(None, "lm-eval few-shot examples")
    gen_mc_tasks: str | None = opt(None, "JSONL task file for generative multiple choice", flag="--tasks")
    regenerations: int = opt(3, "gen-mc: sampled regenerations of replies without an extractable answer")
    # 7. mexa
    mexa_pairs: str | None = opt(None, "JSONL with 'en' and 'xx' per line (from `eval build --task parallel`); "
                                       "`eval mexa` without it: Bible verses", flag="--pairs")
    mexa_n: int = opt(100, "number of pairs", flag="--n")
    pooling: Literal["weighted", "last"] = opt("weighted", "sentence vector: position-weighted mean (MEXA) or the "
                                                           "last token")
    blocks_only: bool = opt(False, "score the block outputs only, not layer 0 (the embedding output)")
    exclude_first: bool = opt(False, "not MEXA: drop the first position (attention sink) from the sentence vector")
    centre: bool = opt(False, "not MEXA: subtract each language's mean vector before the cosines")
    precision: Literal["model", "bfloat16"] = opt("model", "model = the model's own dtype; bfloat16 = bf16 "
                                                           "autocast for the matrix products")
    plot: str | None = opt(None, "also write the per-layer plot of every model to this PNG")
    # 8. fidelity
    fidelity_prompts: str | None = opt(None, "UTF-8 file, one prompt per line: replies expected in --target-lang",
                                       flag="--prompts")
    source_prompts: str | None = opt(None, "prompts in --source-lang (one a line), replies expected in it (does the "
                                           "model keep English?)")
    responses: str | None = opt(None, "JSONL with 'response' (or 'output') per line: score existing replies "
                                      "instead of generating")
    min_words: int = opt(5, "shortest line (in words) whose language is judged")
    sample: bool = opt(False, "sample the replies (seed 004 App. B: temperature 0.6, top-p 0.9) instead of greedy")
    temperature: float | None = opt(None, "with --sample (default: 0.6, seed 004)")
    top_p: float | None = opt(None, "with --sample (default: 0.9, seed 004)")
    draws: int = opt(1, "with --sample: sampled replies per prompt (each draw its own seeds); LPR is then the share of "
                        "all replies with its interval bootstrapped over prompts, and a paired comparison compares each "
                        "prompt's share of passing draws: 3 draws narrow LPR where one reply a prompt is a coin toss")
    system_prompt: str | None = opt(None, "system turn before each prompt: text, 'same-language:<code>' (seed 004 "
                                          "App. F's 'Please answer in the same language as the input.' in that "
                                          "language) or 'same-language' (that sentence in each prompt set's own "
                                          "language: --target-lang for --prompts, --source-lang for "
                                          "--source-prompts)")
    # 9. judge
    outputs_a: str | None = opt(None, "JSONL of model A: instruction/prompt + output/response")
    outputs_b: str | None = opt(None, "JSONL of model B on the same instructions")
    name_a: str | None = opt(None, "label of model A (default: file name)")
    name_b: str | None = opt(None, "label of model B (default: file name)")
    url: str | None = opt(None, "endpoint base URL, e.g. http://127.0.0.1:8000/v1 (default: $LANGSHIFT_JUDGE_URL; "
                                "none → skipped)")
    judge_model: str | None = opt(None, "judge model name at the endpoint")
    api_key_env: str | None = opt(None, "name of the environment variable holding the key")
    retries: int = opt(4, "judge requests retried this often")
    backoff: float = opt(2.0, "first retry wait in seconds (doubles)")
    timeout: float = opt(60.0, "seconds per judge request")
    verdicts: str | None = opt(None, "write per-item verdicts (JSONL) here as they come")

    POSITIVE: ClassVar = ("batch_size", "max_length", "stride", "max_new_tokens", "limit", "bpb_limit", "retries",
                          "draws")
    NON_NEGATIVE: ClassVar = ("regenerations", "min_words", "num_fewshot", "backoff", "timeout")

    def validate(self) -> None:
        for field in ("mc_tasks", "lm_eval_tasks", "tasks"):  # a recipe's slot gives one path
            if isinstance(getattr(self, field), str):
                setattr(self, field, [getattr(self, field)])
        for names, lo in ((self.POSITIVE, 1), (self.NON_NEGATIVE, 0)):
            for field in names:
                if getattr(self, field) is not None:
                    check_range(param(field), getattr(self, field), lo)
        check_range(param("mexa_n"), self.mexa_n, 2)
        if self.draws > 1 and not self.sample:
            raise ConfigError(param("draws"), self.draws, "greedy replies are the same in every draw; add --sample "
                                                          "or give 1")
        for field in ("name", "baseline_name", "intermediate_name", "name_a", "name_b"):
            label = getattr(self, field)
            if label is not None and (not isinstance(label, str) or not label.strip() or "/" in label):
                raise ConfigError(param(field), label, "give a short label without '/'")

    def models(self) -> list[tuple[str, str]]:
        """(label, model) of each model to evaluate, baseline → intermediate → model; labels distinct."""
        given = [(self.baseline_name, self.baseline), (self.intermediate_name or "intermediate", self.intermediate),
                 (self.name or self.model, self.model)]
        models = [(str(label), name) for label, name in given if name]
        labels = [label for label, _ in models]
        if len(set(labels)) != len(labels):
            raise ConfigError("--name/--baseline-name/--intermediate-name", labels, "two evaluated models share a "
                                                                                  "label; give each its own")
        return models


def param(field: str) -> str:
    """``field`` as named in errors: ``--field-name`` (the pipeline turns it into ``eval.field_name``)."""
    return "--" + field.replace("_", "-")


def flag(field: str) -> str:
    """``field``'s command-line flag (``--text`` for bpb_text): what errors found while a task runs name."""
    meta = {f.name: f.metadata for f in dataclasses.fields(EvalConfig)}[field]
    return meta.get("flag") or param(field)


@dataclass
class EvalResult(Result):
    """``results``: label → task → the result (bulky per-item lists left out; they are in the saved files)."""

    out: str | None
    models: list[str] = dataclasses.field(default_factory=list)
    results: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    files: list[str] = dataclasses.field(default_factory=list)   # result files written or kept
    kept: list[str] = dataclasses.field(default_factory=list)    # of them, kept from an earlier run
