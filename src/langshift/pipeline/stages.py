"""The pipeline's stages: each one a typed config, the artefacts it reads (slots) and makes, and a
function that calls the stage library and writes into the stage's work folder.

Slots are config fields naming an input artefact. A recipe may set one to a path (or model name),
to ``@stage`` (that stage's artefact) or to ``$name`` (an entry of the recipe's ``inputs``); left
unset, it takes the first of its default sources present in the recipe. Given paths are hashed by
content; ``@stage`` inputs by the producing stage's record.

A stage's run function may be called again on a work folder left by an interrupted attempt of the
same config and inputs: every sub-artefact is written atomically by the libraries, so one that
exists is complete and is kept (training stages resume from their own checkpoints there).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..codeswitch.migrate import MigrateConfig
from ..codeswitch.syncs import SyncsConfig
from ..config import StageConfig, check_range, opt
from ..errors import ConfigError, LangshiftError
from ..files import atomic_write_json, read_lines
from ..registry import Registry
from ..static.fasttext import StaticConfig
from ..train.clo import CLOConfig
from ..train.lapt import LAPTConfig
from ..transfer.config import TransferConfig
from ..vocab.train import TokenizerConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Slot:
    field: str
    sources: tuple[str, ...] = ()          # "@stage" / "$input" tried in order when the recipe sets nothing
    required: bool = True
    kind: Literal["file", "dir", "path", "model"] = "path"  # model: a folder, a built-in name or a hub id


@dataclass
class Context:
    work: Path                                # the stage's work folder (becomes OUT/<stage>)
    launch: dict[str, Any] | None = None      # accelerate settings for training stages
    labels: dict[str, str] = dataclasses.field(default_factory=dict)  # slot field -> label (producing stage)

    def step(self, name: str, outputs: tuple[str, ...], fn: Callable[[], dict]) -> dict:
        """Run ``fn`` once per attempt: a finished step (its marker exists) is not redone when an
        interrupted attempt is continued; a step cut short is redone from the start."""
        marker = self.work / f".step.{name}.json"
        if marker.is_file():
            return json.loads(marker.read_text(encoding="utf-8"))
        for rel in outputs:  # leftovers of a step cut short
            path = self.work / rel
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        result = fn()
        atomic_write_json(marker, result)
        return result


@dataclass(frozen=True)
class Stage:
    name: str
    config: type[StageConfig]
    slots: tuple[Slot, ...]
    output: str                                # the artefact, relative to OUT/<stage>
    run: Callable[[Any, Context], dict]
    owned: dict[str, Callable[[Path], Any]] = dataclasses.field(default_factory=dict)  # fields the pipeline sets
    volatile: tuple[str, ...] = ()             # fields that do not change the result (not hashed)
    training: bool = False
    help: str = ""

    def slot(self, field: str) -> Slot | None:
        return next((s for s in self.slots if s.field == field), None)


STAGES: Registry[Stage] = Registry("pipeline stage", modules=[__name__])
# The order of the data flow (README, "Concepts and data flow"): a recipe's stages always run in this order.
# the init methods the transfer stage compared, written beside the model it kept (the report shows them)
CANDIDATES_FILE = "langshift_candidates.json"
ORDER = ("tokenizer", "migrate", "syncs", "static", "transfer", "lapt", "transplant", "clo_data", "clo",
         "eval", "report")
MODEL_STAGES = ("clo", "transplant", "lapt", "transfer")  # newest first: what "the model" of a recipe is


def _add(stage: Stage) -> Stage:
    STAGES.register(stage.name)(stage)
    return stage


def _lines(path: str, param: str, limit: int | None = None) -> list[str]:
    lines = read_lines(path, param)
    return lines[:limit] if limit else lines


# 1. Tokenizer --------------------------------------------------------------------------------------

@dataclass
class TokenizerStageConfig(TokenizerConfig):
    mode: Literal["train", "extend"] = opt("train", "train a new target tokenizer, or extend the base one")
    add: int = opt(1000, "extend: how many target-language tokens to add")
    text: str | None = opt(None, "target-language text (UTF-8 file, one text a line)")
    base: str | None = opt(None, "model or tokenizer whose special tokens and chat template are kept "
                                 "(extend: the tokenizer that is extended)")
    limit: int | None = opt(None, "train on the first N lines only")

    def validate(self) -> None:
        super().validate()
        if self.mode not in ("train", "extend"):
            raise ConfigError("tokenizer.mode", self.mode, "choose train or extend")
        check_range("tokenizer.add", self.add, 1)


def run_tokenizer(cfg: TokenizerStageConfig, ctx: Context) -> dict:
    return ctx.step("tokenizer", ("tokenizer",), lambda: _make_tokenizer(cfg, ctx.work / "tokenizer"))


def _make_tokenizer(cfg: TokenizerStageConfig, out: Path) -> dict:
    from ..models import load_tokenizer
    from ..vocab.fertility import fertility
    from ..vocab.frame import frame_report
    from ..vocab.train import extend_tokenizer, save_tokenizer, train_tokenizer

    texts = _lines(cfg.text, "tokenizer.text", cfg.limit)
    base = load_tokenizer(cfg.base, "tokenizer.base") if cfg.base else None
    if cfg.mode == "extend":
        if base is None:
            raise ConfigError("tokenizer.base", None, "mode extend needs the tokenizer to extend; set tokenizer.base "
                                                      "or inputs.model")
        tok = extend_tokenizer(base, texts, cfg.add, min_frequency=cfg.min_frequency, show_progress=cfg.show_progress)
    else:
        tok = train_tokenizer(texts, cfg.kind, cfg.vocab_size, base, min_frequency=cfg.min_frequency,
                              show_progress=cfg.show_progress, keep_chat_frame=cfg.keep_chat_frame)
    save_tokenizer(tok, out)
    sample = texts[:2000]
    summary = {"vocab_size": len(tok), "fertility": fertility(tok, sample)}
    if base is not None:
        summary["base_fertility"] = fertility(base, sample)
        summary["chat_frame"] = frame_report(base, tok)
    return summary


_add(Stage("tokenizer", TokenizerStageConfig,
           (Slot("text", ("$target_text",), kind="file"), Slot("base", ("$model",), required=False, kind="model")),
           "tokenizer", run_tokenizer, volatile=("show_progress",),
           help="train (or extend) the target-language tokenizer"))


# 2. Code-switching ---------------------------------------------------------------------------------

@dataclass
class MigrateStageConfig(MigrateConfig):
    text: str | None = opt(None, "source-language corpus to code-switch (UTF-8, one document a line)")
    translator_options: dict = opt({}, "options of the translator backend, e.g. {model: FOLDER} for seq2seq")


@dataclass
class SyncsStageConfig(SyncsConfig):
    text: str | None = opt(None, "corpus to code-switch (UTF-8, one document a line)")
    translator_options: dict = opt({}, "options of the translator backend, e.g. {model: FOLDER} for seq2seq")


def _codeswitch(cfg, ctx: Context, method: str) -> dict:
    return ctx.step(method, ("codeswitched.jsonl", "codeswitched.txt"), lambda: _switch(cfg, ctx, method))


def _switch(cfg, ctx: Context, method: str) -> dict:
    # run_migrate/run_syncs take no translator options (seq2seq needs its model folder), so the stage
    # composes the same public steps with get_translator(**options).
    # The package re-exports functions named like these modules: import the modules themselves.

    mig = importlib.import_module("langshift.codeswitch.migrate")
    syn = importlib.import_module("langshift.codeswitch.syncs")

    from ..codeswitch.provenance import TokenCounter, write_outputs
    from ..engine import load_corpus
    from ..translate import get_translator

    out, text_out = ctx.work / "codeswitched.jsonl", ctx.work / "codeswitched.txt"
    translator = get_translator(cfg.translator, cfg.src_lang, cfg.tgt_lang, cache=cfg.cache,
                                **cfg.translator_options)
    counter = TokenCounter(cfg.tokenizer)
    ctx.work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ctx.work, prefix=".corpus.") as work:
        docs = load_corpus([cfg.text], work)  # streamed into Arrow on disk: no list of the corpus in memory
        if method == "migrate":
            stats = mig.Stats()  # the tagger by name: each engine worker builds its own
            write_outputs(mig.migrate(docs, cfg.tagger, translator, cfg, counter, stats, work), out, text_out)
            return mig.summary(stats, cfg, counter)
        # the tagger by name, likewise
        tagger = cfg.tagger if cfg.words != "random" and any(t.startswith("token") for t in cfg.types()) else None
        stats = syn.Stats()
        write_outputs(syn.syncs(docs, translator, cfg, tagger, counter, stats, work), out, text_out)
        return syn.summary(stats, cfg, counter)


_add(Stage("migrate", MigrateStageConfig, (Slot("text", ("$source_text",), kind="file"),), "codeswitched.txt",
           # batch_size is hashed: a batch is one translator call, and a call's context can change a word's
           # translation
           lambda cfg, ctx: _codeswitch(cfg, ctx, "migrate"), volatile=("num_proc", "cache", "engine", "tasks",
                                                                       "executor", "executor_options", "work_dir"),
           help="MIGRATE: translate the nouns of the source corpus in place"))
_add(Stage("syncs", SyncsStageConfig, (Slot("text", ("$source_text",), kind="file"),), "codeswitched.txt",
           lambda cfg, ctx: _codeswitch(cfg, ctx, "syncs"), volatile=("cache", "num_proc", "engine", "tasks", "executor",
                                                                     "executor_options", "work_dir"),
           help="SynCS: token/sentence replacement/annotation at a density and budget"))


# 3. Static embeddings ------------------------------------------------------------------------------

@dataclass
class StaticStageConfig(StaticConfig):
    init: str | None = opt(None, "fastText model of the target language to continue (MIGRATE: cc.<lang>.300.bin)")
    text: str | None = opt(None, "target-language text to train from scratch on when no init is given")
    codeswitched: str | None = opt(None, "code-switched text to continue training on (MIGRATE eq. 6)")

    def validate(self) -> None:
        super().validate()


def run_static(cfg: StaticStageConfig, ctx: Context) -> dict:
    return ctx.step("static", ("static",), lambda: _make_static(cfg, ctx.work / "static"))


def _make_static(cfg: StaticStageConfig, out: Path) -> dict:
    from ..static.fasttext import continue_static, load_static, tokenise_lines, train_static

    if cfg.init is None and cfg.text is None:
        raise ConfigError("static.init", None, "give a fastText model to continue (static.init) or target text "
                                               "to train on (static.text / inputs.target_text)")
    steps = []
    if cfg.init is not None:
        space = load_static(cfg.init, param="static.init", trainable=cfg.codeswitched is not None)
        steps.append("loaded")
    else:
        space = train_static(tokenise_lines(read_lines(cfg.text, "static.text"), cfg.lowercase), cfg)
        steps.append("trained")
    if cfg.codeswitched is not None:
        space = continue_static(space, tokenise_lines(read_lines(cfg.codeswitched, "static.codeswitched"),
                                                      space.lowercase), cfg)
        steps.append("continued on code-switched text")
    space.save(out)
    return {"words": len(space), "dim": space.dim, "steps": steps}


_add(Stage("static", StaticStageConfig,
           (Slot("init", ("$static_init",), required=False, kind="path"),
            Slot("text", ("$target_text",), required=False, kind="file"),
            Slot("codeswitched", ("@migrate", "@syncs"), required=False, kind="file")),
           "static", run_static, help="fastText static embeddings: train or continue on code-switched text"))


# 4. Embedding init (transfer) ----------------------------------------------------------------------

@dataclass
class TransferStageConfig(TransferConfig):
    candidates: list = opt([], "init methods to try side by side (e.g. [migrate, salt, focus, mean]); the model "
                               "with the lowest bits per byte on select_text is kept and `method` is not used. An "
                               "entry may be a mapping {method: NAME, FIELD: VALUE} changing this stage's fields "
                               "for that candidate (an input field only to null, e.g. aux_fasttext: null)")
    select_text: str | None = opt(None, "held-out target-language text (one document a line) that picks among "
                                        "the candidates; keep it apart from every training text")
    select_limit: int | None = opt(None, "score the candidates on the first N lines of select_text only")

    def validate(self) -> None:
        from ..transfer.methods import INIT_METHODS

        super().validate()
        if not isinstance(self.candidates, list):
            raise ConfigError("transfer.candidates", self.candidates, "give a list of init methods")
        names = [candidate_fields(c)["method"] for c in self.candidates]
        for name in names:
            INIT_METHODS.get(name, "transfer.candidates")
        if len(set(names)) != len(names):
            raise ConfigError("transfer.candidates", names, "list each method once")
        if self.candidates and self.select_text is None:
            raise ConfigError("transfer.select_text", None, "candidates are picked by bits per byte on held-out "
                                                            "text; give select_text (or inputs.select_text)")
        if self.select_limit is not None:
            check_range("transfer.select_limit", self.select_limit, 1)


_TRANSFER_INPUTS = ("model", "tokenizer", "aux_fasttext", "aux_text", "aux_model", "source_fasttext", "source_text",
                    "dictionary", "select_text")
_CANDIDATE_FIXED = ("out", "overwrite", "provenance", "candidates", "select_text", "select_limit")


def candidate_fields(entry: Any) -> dict[str, Any]:
    """``focus`` or ``{method: focus, aux_fasttext: null, …}`` → the fields that candidate changes."""
    if isinstance(entry, str):
        return {"method": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("method"), str):
        raise ConfigError("transfer.candidates", entry, "give a method name or a mapping with a 'method' name")
    fields = {f.name for f in dataclasses.fields(TransferConfig)}
    for key, value in entry.items():
        if key not in fields or key in _CANDIDATE_FIXED:
            raise ConfigError(f"transfer.candidates.{key}", value, "not a field a candidate can change; use "
                                                                   "method and the transfer options")
        if key in _TRANSFER_INPUTS and value is not None:
            raise ConfigError(f"transfer.candidates.{key}", value, "an input can only be switched off (null) per "
                                                                   "candidate; set the path on the stage itself")
    return dict(entry)


def run_transfer_stage(cfg: TransferStageConfig, ctx: Context) -> dict:
    if not cfg.candidates:
        return ctx.step("transfer", ("model",), lambda: _transfer_one(cfg, {}, str(ctx.work / "model")))
    # 4.1 Every candidate into its own folder, scored on the held-out text (each a resumable step).
    changes = {candidate_fields(c)["method"]: candidate_fields(c) for c in cfg.candidates}
    scores = {m: ctx.step(f"transfer.{m}", (f"candidates/{m}",),
                          lambda m=m: _score_candidate(cfg, changes[m], ctx.work / "candidates" / m))
              for m in changes}
    # 4.2 Keep the best (ties: the first listed). The rename comes first, so a kill during the clean-up
    # leaves a complete model/ that a continued attempt keeps.
    best = min(changes, key=lambda m: scores[m]["bits_per_byte"])

    def keep() -> dict:
        from ..files import atomic_write_json

        if not (ctx.work / "model").exists():
            os.replace(ctx.work / "candidates" / best / "model", ctx.work / "model")
        shutil.rmtree(ctx.work / "candidates", ignore_errors=True)
        chosen = {"method": best, "selected_by": f"lowest bits per byte on {cfg.select_text}",
                  "candidates": {m: {k: v for k, v in s.items() if k != "transfer"} for m, s in scores.items()}}
        atomic_write_json(ctx.work / "model" / CANDIDATES_FILE, chosen)  # the report shows the comparison
        return {**scores[best]["transfer"], **chosen}

    return ctx.step("select", (), keep)


def _transfer_one(cfg: TransferStageConfig, changes: dict[str, Any], out: str) -> dict:
    from ..transfer.apply import run_transfer

    base = {k: v for k, v in cfg.to_dict().items() if k not in ("candidates", "select_text", "select_limit")}
    summary = run_transfer(TransferConfig(**{**base, **changes, "out": out}))
    return {k: summary[k] for k in ("method", "tied", "counts", "overlap") if k in summary}


def _score_candidate(cfg: TransferStageConfig, changes: dict[str, Any], folder: Path) -> dict:
    from ..evaluate.bpb import bits_per_byte
    from ..models import load_model, load_tokenizer

    method = changes["method"]
    folder.mkdir(parents=True, exist_ok=True)
    summary = _transfer_one(cfg, changes, str(folder / "model"))
    model, tok = load_model(str(folder / "model"), "transfer.candidates"), load_tokenizer(str(folder / "model"))
    res = bits_per_byte(model, tok, _lines(cfg.select_text, "transfer.select_text", cfg.select_limit))
    log.info("transfer candidate %s: %.4f bits per byte on the held-out text", method, res["bits_per_byte"])
    return {"bits_per_byte": res["bits_per_byte"], "bytes": res["bytes"], "counts": summary.get("counts"),
            **({"changes": changes} if len(changes) > 1 else {}), "transfer": summary}


_add(Stage("transfer", TransferStageConfig,
           (Slot("model", ("$model",), kind="model"), Slot("tokenizer", ("@tokenizer", "$target_tokenizer"),
                                                           kind="path"),
            Slot("aux_fasttext", ("@static",), required=False), Slot("aux_text", (), required=False, kind="file"),
            Slot("aux_model", (), required=False, kind="model"), Slot("source_fasttext", (), required=False),
            Slot("source_text", (), required=False, kind="file"), Slot("dictionary", (), required=False, kind="file"),
            Slot("select_text", ("$select_text",), required=False, kind="file")),
           "model", run_transfer_stage,
           owned={"out": lambda w: str(w / "model"), "overwrite": lambda w: False, "provenance": lambda w: None},
           volatile=("block_size",), help="give the model the target tokenizer; initialise new rows (or try several "
                                          "init methods and keep the best on held-out text)"))


# 5. Training (LAPT, CLO): in-process, or under `accelerate launch` ---------------------------------

def _train(stage: str, cfg, ctx: Context) -> dict:
    out = Path(cfg.out)
    if not out.exists():  # the library writes it in one rename: present means finished
        drop_partial_checkpoints(out.with_name(out.name + ".work"))
        if ctx.launch and ctx.launch.get("accelerate_config"):
            launch_training(stage, cfg, ctx.launch, ctx.work)
        else:
            train_in_process(stage, cfg)
    return json.loads((out / "train_summary.json").read_text(encoding="utf-8"))


def drop_partial_checkpoints(folder: Path) -> list[str]:
    """Remove Trainer checkpoints cut short by a kill: Trainer writes ``trainer_state.json`` last and not
    atomically, and resuming from a checkpoint without a complete one fails (or resumes wrong)."""
    dropped = []
    for ckpt in sorted(folder.glob("checkpoint-*")) if folder.is_dir() else []:
        state = ckpt / "trainer_state.json"
        try:
            ok = json.loads(state.read_text(encoding="utf-8")).get("global_step") == int(ckpt.name.split("-")[-1])
        except (OSError, ValueError):
            ok = False
        if not ok:
            shutil.rmtree(ckpt, ignore_errors=True)
            dropped.append(ckpt.name)
    if dropped:
        log.warning("removed checkpoint(s) cut short by an interruption: %s", ", ".join(dropped))
    return dropped


def train_in_process(stage: str, cfg) -> Path:
    from transformers import set_seed

    # train_lapt builds the LoRA adapter (random init) before Trainer seeds anything: seed first, so the
    # result does not depend on what ran earlier in this process.
    set_seed(cfg.seed)
    if stage == "lapt":
        from ..train.lapt import train_lapt

        return train_lapt(cfg)
    from ..train.clo import train_clo

    return train_clo(cfg)


def launch_command(stage: str, config_file: Path, launch: dict[str, Any]) -> list[str]:
    """``accelerate launch`` of ``python -m langshift.pipeline.launch STAGE CONFIG.json``."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(launch["accelerate_config"])]
    if launch.get("num_processes"):
        cmd += ["--num_processes", str(launch["num_processes"])]
    return cmd + ["-m", "langshift.pipeline.launch", stage, str(config_file)]


def launch_training(stage: str, cfg, launch: dict[str, Any], work: Path) -> None:
    config_file = work / f"{stage}.launch.json"
    atomic_write_json(config_file, cfg.to_dict())
    cmd = launch_command(stage, config_file, launch)
    log.info("launching: %s", " ".join(cmd))
    res = subprocess.run(cmd, check=False, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if res.returncode != 0:
        raise LangshiftError(f"stage {stage!r}: `accelerate launch` exited with {res.returncode}; its output is "
                             f"above. Checkpoints in {work} are kept; run again to resume")


_TRAIN_OWNED = {"out": lambda w: str(w / "model"), "overwrite": lambda w: False, "keep_work": lambda w: False}
_add(Stage("lapt", LAPTConfig,
           (Slot("model", ("@transfer", "$model"), kind="model"), Slot("text", ("$lapt_text", "$target_text"),
                                                                       kind="file"),
            Slot("code_switched", ("@syncs",), required=False, kind="file")),
           "model", lambda cfg, ctx: _train("lapt", cfg, ctx), owned=_TRAIN_OWNED, training=True,
           help="language-adaptive pre-training (LoRA + embeddings, embeddings only, full)"))


# 6. Transplant (Franken-Adapter) -------------------------------------------------------------------

@dataclass
class TransplantStageConfig(StageConfig):
    embeddings_from: str | None = opt(None, "model A: tokenizer, input embeddings, LM head (default: LAPT's)")
    body_from: str | None = opt(None, "model B: the instruction-tuned sibling whose body is kept")


def run_transplant(cfg: TransplantStageConfig, ctx: Context) -> dict:
    from ..train.transplant import transplant

    def make() -> dict:
        out = transplant(cfg.embeddings_from, cfg.body_from, str(ctx.work / "model"))
        return json.loads((out / "transplant.json").read_text(encoding="utf-8"))

    return ctx.step("transplant", ("model",), make)


_add(Stage("transplant", TransplantStageConfig,
           (Slot("embeddings_from", ("@lapt", "@transfer"), kind="model"),
            Slot("body_from", ("$instruct_model",), kind="model")),
           "model", run_transplant, help="Franken-Adapter: tuned embeddings onto the instruct model's body"))


# 7. CLO data and CLO -------------------------------------------------------------------------------

@dataclass
class CloDataStageConfig(StageConfig):
    sft: str | None = opt(None, "English JSONL: {id, instruction, response} per line")
    translator: str = opt("apertium", "translator by name (`langshift ls`)")
    translator_options: dict = opt({}, "options of the translator backend, e.g. {model: FOLDER} for seq2seq")
    src: str = opt("en", "source language code")
    lang: str = opt("es", "target language code")
    cache: str | None = opt(None, "sqlite translation cache reused across runs")


def run_clo_data(cfg: CloDataStageConfig, ctx: Context) -> dict:
    from ..train.clo_data import make_clo_data
    from ..translate import get_translator

    def make() -> dict:
        translator = get_translator(cfg.translator, cfg.src, cfg.lang, cache=cfg.cache, **cfg.translator_options)
        return make_clo_data(cfg.sft, cfg.translator, cfg.lang, str(ctx.work / "clo.jsonl"), cfg.src, cfg.cache,
                             overwrite=True, translator_obj=translator)

    return ctx.step("clo_data", ("clo.jsonl", "clo.untranslated.jsonl", "clo.stats.json"), make)


_add(Stage("clo_data", CloDataStageConfig, (Slot("sft", ("$sft",), kind="file"),), "clo.jsonl", run_clo_data,
           volatile=("cache",), help="translate English instruction pairs into CLO records"))
_add(Stage("clo", CLOConfig,
           (Slot("model", ("@transplant", "@lapt", "@transfer", "$instruct_model", "$model"), kind="model"),
            Slot("data", ("@clo_data", "$clo_data"), kind="file")),
           "model", lambda cfg, ctx: _train("clo", cfg, ctx), owned=_TRAIN_OWNED, training=True,
           volatile=("ref_batch_size",), help="cross-lingual optimisation (CLO)"))


# 8. Evaluation and report --------------------------------------------------------------------------

@dataclass
class EvalStageConfig(StageConfig):
    model: str | None = opt(None, "model to evaluate (default: the recipe's last model)")
    baseline: str | None = opt(None, "also evaluate this model (e.g. $model, the source) for comparison")
    intermediate: str | None = opt(None, "also evaluate a model made on the way (e.g. @lapt when the recipe goes "
                                         "on to clo)")
    names: dict = opt({}, "labels of the evaluated models in results and report, by role: {baseline: original, "
                          "intermediate: adapted, model: aligned} (default: producing stage; 'baseline')")
    lang: str = opt("es", "target language (templates, fidelity)")
    bpb_text: str | None = opt(None, "bits per byte on this text file (one document a line)")
    bpb_limit: int | None = opt(None, "score only the first N lines of bpb_text")
    mc_tasks: str | None = opt(None, "multiple choice by log-likelihood on this JSONL task file")
    mc_format: Literal["text", "letters"] = opt("text", "score each choice's text or its letter")
    lm_eval_tasks: list[str] = opt([], "lm-eval task names (e.g. arc_es, truthfulqa_es_mc1, m_mmlu_es)")
    lm_eval_include_path: str | None = opt(None, "folder of extra lm-eval task YAMLs")
    num_fewshot: int | None = opt(None, "lm-eval few-shot examples")
    mexa_pairs: str | None = opt(None, "MEXA on this JSONL of {en, xx} parallel sentences")
    mexa_n: int = opt(100, "MEXA: number of pairs")
    fidelity_prompts: str | None = opt(None, "language fidelity of chat replies to these prompts (one a line)")
    source_prompts: str | None = opt(None, "language fidelity in the source language too: prompts in source_lang "
                                           "(one a line), replies expected in it (does the model keep English?)")
    source_lang: str = opt("en", "language of source_prompts")
    max_new_tokens: int = opt(128, "fidelity: tokens generated per reply")
    limit: int | None = opt(None, "evaluate only the first N items of each task")
    max_length: int | None = opt(None, "longest window in tokens (default: min(model limit, 1024))")
    batch_size: int = opt(8, "sequences per forward pass")

    def validate(self) -> None:
        check_range("eval.batch_size", self.batch_size, 1)
        check_range("eval.mexa_n", self.mexa_n, 2)
        if self.limit is not None:
            check_range("eval.limit", self.limit, 1)
        if self.bpb_limit is not None:
            check_range("eval.bpb_limit", self.bpb_limit, 1)
        for role, label in self.names.items():
            if role not in ("model", "intermediate", "baseline"):
                raise ConfigError(f"eval.names.{role}", label, "name a role: model, intermediate or baseline")
            if not isinstance(label, str) or not label.strip() or "/" in label:
                raise ConfigError(f"eval.names.{role}", label, "give a short label without '/'")


def run_eval(cfg: EvalStageConfig, ctx: Context) -> dict:
    from ..evaluate.results import save_model_order, save_result
    from ..models import load_model, load_tokenizer

    tasks = [t for t, on in (("bpb", cfg.bpb_text), ("mc", cfg.mc_tasks), ("lm_eval", cfg.lm_eval_tasks),
                             ("mexa", cfg.mexa_pairs), ("fidelity", cfg.fidelity_prompts),
                             ("fidelity_source", cfg.source_prompts)) if on]
    if not tasks:
        raise ConfigError("eval", None, "no evaluation asked for; set eval.bpb_text, mc_tasks, lm_eval_tasks, "
                                        "mexa_pairs or fidelity_prompts (or inputs.eval_text)")
    results_dir = ctx.work / "results"
    # Before → after: the baseline, then the intermediate model, then the recipe's model.
    roles = [("baseline", cfg.baseline, "baseline"), ("intermediate", cfg.intermediate,
                                                      ctx.labels.get("intermediate", "intermediate")),
             ("model", cfg.model, ctx.labels.get("model", "model"))]
    models = [(cfg.names.get(role, default), name) for role, name, default in roles if name]
    labels = [label for label, _ in models]
    if len(set(labels)) != len(labels):
        raise ConfigError("eval.names", cfg.names, f"two evaluated models share a label ({', '.join(labels)}); "
                                                   "give each role its own label")
    save_model_order(results_dir, labels)
    summary: dict[str, dict] = {}
    for label, name in models:
        loaded = None
        for task in tasks:
            kind = {"lm_eval": "mc", "fidelity_source": "fidelity"}.get(task, task)
            tag = {"lm_eval": "lm_eval", "fidelity_source": cfg.source_lang}.get(task)
            path = results_dir / (f"{kind}.{label}" + (f".{tag}" if tag else "") + ".json")
            if not path.is_file():  # an earlier attempt may have finished this one (written atomically)
                if loaded is None:
                    loaded = (load_model(name, f"eval.{label}"), load_tokenizer(name, f"eval.{label}"))
                result, config = _evaluate(task, cfg, *loaded)
                save_result(results_dir, kind, result, label, config, tag=tag)
            stored = json.loads(path.read_text(encoding="utf-8"))["result"]
            summary.setdefault(label, {})[task] = {k: v for k, v in stored.items()
                                                  if isinstance(v, (int, float, str, bool)) or v is None}
    return summary


def _evaluate(task: str, cfg: EvalStageConfig, model, tok) -> tuple[dict, dict]:
    def cut(items):
        return items[:cfg.limit] if cfg.limit else items

    if task == "bpb":
        from ..evaluate.bpb import bits_per_byte

        texts = _lines(cfg.bpb_text, "eval.bpb_text", cfg.bpb_limit)
        res = bits_per_byte(model, tok, texts, max_length=cfg.max_length, batch_size=cfg.batch_size)
        res.pop("per_document")
        return res, {"text": cfg.bpb_text, "limit": cfg.bpb_limit}
    if task == "mc":
        from ..evaluate.mc import evaluate_mc, load_items

        res = evaluate_mc(model, tok, cut(load_items(cfg.mc_tasks, "eval.mc_tasks")), cfg.lang, cfg.mc_format,
                          cfg.batch_size, cfg.max_length or 1024)
        return res, {"tasks": cfg.mc_tasks, "format": cfg.mc_format, "lang": cfg.lang}
    if task == "lm_eval":
        from ..evaluate.mc import run_lm_eval

        res = run_lm_eval(model, tok, list(cfg.lm_eval_tasks), cfg.lm_eval_include_path, cfg.limit,
                          cfg.batch_size, cfg.num_fewshot)
        return res, {"tasks": list(cfg.lm_eval_tasks)}
    if task == "mexa":
        from ..evaluate.mexa import mexa, read_pairs

        pairs = read_pairs(cfg.mexa_pairs, "eval.mexa_pairs", cfg.mexa_n)
        return mexa(model, tok, pairs, cfg.batch_size, cfg.max_length or 128), {"pairs": cfg.mexa_pairs,
                                                                                 "n": len(pairs)}
    from ..evaluate.fidelity import evaluate_fidelity

    param, path, lang = (("eval.source_prompts", cfg.source_prompts, cfg.source_lang) if task == "fidelity_source"
                         else ("eval.fidelity_prompts", cfg.fidelity_prompts, cfg.lang))
    prompts = cut(read_lines(path, param))
    res = evaluate_fidelity(model, tok, prompts, lang, cfg.max_new_tokens, cfg.batch_size)
    return res, {"prompts": path, "lang": lang}


_add(Stage("eval", EvalStageConfig,
           (Slot("model", tuple(f"@{s}" for s in MODEL_STAGES) + ("$model",), kind="model"),
            Slot("baseline", (), required=False, kind="model"),
            Slot("intermediate", (), required=False, kind="model"),
            Slot("bpb_text", ("$eval_text",), required=False, kind="file"),
            Slot("mc_tasks", (), required=False, kind="file"), Slot("mexa_pairs", (), required=False, kind="file"),
            Slot("fidelity_prompts", (), required=False, kind="file"),
            Slot("source_prompts", (), required=False, kind="file")),
           "results", run_eval, volatile=("batch_size",),
           help="bits per byte, multiple choice, lm-eval tasks, MEXA, language fidelity"))


@dataclass
class ReportStageConfig(StageConfig):
    runs: str | None = opt(None, "folder of evaluation results (default: the eval stage's)")
    title: str = opt("langshift report", "page title")
    transfer: str | None = opt(None, "transferred model folder whose init-method comparison is shown (default: the "
                                     "transfer stage's, when it compared candidates)")
    lapt: str | None = opt(None, "trained model folder whose training loss is plotted (default: the lapt stage's)")
    clo: str | None = opt(None, "trained model folder whose training loss is plotted (default: the clo stage's)")


def run_report(cfg: ReportStageConfig, ctx: Context) -> dict:
    from ..evaluate.report import build_report

    def make() -> dict:
        training = {name: folder for name, folder in (("lapt", cfg.lapt), ("clo", cfg.clo)) if folder}
        candidates = Path(cfg.transfer) / CANDIDATES_FILE if cfg.transfer else None
        res = build_report([cfg.runs], ctx.work / "report", title=cfg.title, training=training,
                           candidates=candidates)
        return {"files": res["files"], "models": res["models"]}

    return ctx.step("report", ("report",), make)


_add(Stage("report", ReportStageConfig, (Slot("runs", ("@eval",), kind="dir"),
                                         Slot("transfer", ("@transfer",), required=False, kind="dir"),
                                         Slot("lapt", ("@lapt",), required=False, kind="dir"),
                                         Slot("clo", ("@clo",), required=False, kind="dir")), "report", run_report,
           help="HTML report: evaluation results, the init methods compared, training losses"))
