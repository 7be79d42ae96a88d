"""Run by ``torchrun --nproc_per_node 2`` from test_train_distributed.py: FSDP2 on CPU processes (gloo).

accelerate enables FSDP only on GPU-like devices, so this drives torch's ``fully_shard`` directly, wrapped
as accelerate's TRANSFORMER_BASED_WRAP does (each decoder layer, then the root), trains a few AdamW steps
on this rank's half of each global batch, and ends with the final save our Trainer stages use:
``runtime.gather_full_state_dict`` on every rank, ``runtime.save_final`` on rank 0.

usage: python fsdp2_worker.py MODEL_DIR BATCHES.json OUT STEPS LR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard
from transformers import AutoModelForCausalLM, AutoTokenizer

from langshift.train.runtime import gather_full_state_dict, save_final


def main(model_dir: str, batches: str, out: str, steps: int, lr: float) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    data = json.loads(Path(batches).read_text())
    model.train()
    for step in range(steps):
        ids = torch.tensor(data[step])
        part = ids.shape[0] // world
        mine = ids[rank * part:(rank + 1) * part]
        model(input_ids=mine, labels=mine).loss.backward()  # FSDP averages the gradients over ranks
        optimizer.step()
        optimizer.zero_grad()
    state = gather_full_state_dict(model)
    assert state is not None, "parameters are not sharded"
    if rank == 0:
        work = Path(out + ".work")
        work.mkdir(parents=True, exist_ok=True)
        save_final(model, AutoTokenizer.from_pretrained(model_dir), Path(out), work, False,
                   {"world_size": world, "steps": steps}, state_dict=state)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
