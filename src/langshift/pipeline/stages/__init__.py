"""The pipeline's stages: the table in ``base`` and one module of stage rows per part of the data flow."""

from .base import GROUPS, MODEL_STAGES, ORDER, STAGES, Context, Slot, Stage, add_stage, data_flow
from .training import drop_partial_checkpoints, launch_command, train_in_process

__all__ = ["GROUPS", "MODEL_STAGES", "ORDER", "STAGES", "Context", "Slot", "Stage", "add_stage", "data_flow",
           "drop_partial_checkpoints", "launch_command", "train_in_process"]
