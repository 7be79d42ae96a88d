"""The code-switching stages: MIGRATE and SynCS over the source corpus."""

from __future__ import annotations

from ...codeswitch.migrate import MigrateConfig, run_migrate
from ...codeswitch.syncs import SyncsConfig, run_syncs
from .base import Slot, Stage, add_stage

# 2. Code-switching ---------------------------------------------------------------------------------

PROVENANCE, TEXT = "codeswitched.jsonl", "codeswitched.txt"
OWNED = {"out": lambda w: str(w / PROVENANCE), "text_out": lambda w: str(w / TEXT), "overwrite": lambda w: False}
LEFTOVERS = (PROVENANCE, TEXT, f"{PROVENANCE}.summary.json")
# where the engine runs does not change the output; batch_size is hashed: a batch is one translator call,
# and a call's context can change a word's translation
VOLATILE = ("num_proc", "cache", "engine", "tasks", "executor", "executor_options", "work_dir")

add_stage(Stage("migrate", MigrateConfig, (Slot("text", ("$source_text",), kind="file"),), TEXT, run=run_migrate,
                owned=OWNED, volatile=VOLATILE, leftovers=LEFTOVERS,
                help="MIGRATE: translate the nouns of the source corpus in place"))
add_stage(Stage("syncs", SyncsConfig, (Slot("text", ("$source_text",), kind="file"),), TEXT, run=run_syncs,
                owned=OWNED, volatile=VOLATILE, leftovers=LEFTOVERS,
                help="SynCS: token/sentence replacement/annotation at a density and budget"))
