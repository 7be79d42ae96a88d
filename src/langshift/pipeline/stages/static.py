"""The static-embedding stage: fastText vectors trained or continued on code-switched text."""

from __future__ import annotations

from ...static.run import StaticRunConfig, run_static
from .base import Slot, Stage, add_stage

# 3. Static embeddings ------------------------------------------------------------------------------

add_stage(Stage("static", StaticRunConfig,
                (Slot("init", ("$static_init",), required=False, kind="path"),
                 Slot("text", ("$target_text",), required=False, kind="file"),
                 Slot("codeswitched", ("@migrate", "@syncs"), required=False, kind="file")),
                "static", run=run_static, owned={"out": lambda w: str(w / "static"), "overwrite": lambda w: False},
                volatile=("allow_pickle",),  # it decides whether a pickle loads, not what a loaded one gives
                help="fastText static embeddings: train or continue on code-switched text"))
