"""The code-switching stages: MIGRATE and SynCS over the source corpus."""

from __future__ import annotations

import importlib
import logging
import tempfile
from dataclasses import dataclass

from ...codeswitch.migrate import MigrateConfig
from ...codeswitch.syncs import SyncsConfig
from ...config import opt
from .base import Context, Slot, Stage, add_stage

log = logging.getLogger(__name__)


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

    from ...codeswitch.provenance import TokenCounter, write_outputs
    from ...engine import load_corpus
    from ...translate import get_translator

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


add_stage(Stage("migrate", MigrateStageConfig, (Slot("text", ("$source_text",), kind="file"),), "codeswitched.txt",
           # batch_size is hashed: a batch is one translator call, and a call's context can change a word's
           # translation
           execute=lambda stage, cfg, ctx: _codeswitch(cfg, ctx, "migrate"), volatile=("num_proc", "cache", "engine", "tasks",
                                                                       "executor", "executor_options", "work_dir"),
           help="MIGRATE: translate the nouns of the source corpus in place"))
add_stage(Stage("syncs", SyncsStageConfig, (Slot("text", ("$source_text",), kind="file"),), "codeswitched.txt",
           execute=lambda stage, cfg, ctx: _codeswitch(cfg, ctx, "syncs"), volatile=("cache", "num_proc", "engine", "tasks", "executor",
                                                                     "executor_options", "work_dir"),
           help="SynCS: token/sentence replacement/annotation at a density and budget"))
