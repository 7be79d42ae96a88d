"""Right-padded batches of token-id sequences, shared by the scorers (bits per byte, multiple choice)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def pad_right(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask), both (len(seqs), longest) long tensors, padding on the right."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, seq in enumerate(seqs):
        ids[r, : len(seq)] = torch.as_tensor(list(seq), dtype=torch.long)
        mask[r, : len(seq)] = 1
    return ids, mask
