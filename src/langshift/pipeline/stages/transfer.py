"""The transfer stage: the model with the target tokenizer (one init method, or the best of several)."""

from __future__ import annotations

from ...transfer.config import TransferConfig
from ...transfer.run import run_transfer
from .base import Slot, Stage, add_stage

add_stage(Stage("transfer", TransferConfig,
           (Slot("model", ("$model",), kind="model"), Slot("tokenizer", ("@tokenizer", "$target_tokenizer"),
                                                           kind="path"),
            Slot("aux_fasttext", ("@static",), required=False), Slot("aux_text", (), required=False, kind="file"),
            Slot("aux_model", (), required=False, kind="model"), Slot("source_fasttext", (), required=False),
            Slot("source_text", (), required=False, kind="file"), Slot("dictionary", (), required=False, kind="file"),
            Slot("select_text", ("$select_text",), required=False, kind="file")),
           "model", run=run_transfer,
           owned={"out": lambda w: str(w / "model"), "overwrite": lambda w: False, "provenance": lambda w: None},
           volatile=("block_size",), reports=("langshift_transfer.json", "langshift_candidates.json"),
           help="give the model the target tokenizer; initialise new rows (or try several init methods and keep the "
                "best on held-out text)"))
