"""Reading a few tensors of a safetensors checkpoint and writing a copy where only they change.

Files holding no changed tensor are hard-linked (copied across file systems); a file that holds one
is rewritten as a stream: unchanged tensors' bytes are copied from the source file as they are (so
they stay bit-identical), changed ones are written in the checkpoint's own dtype. Written by hand
because safetensors' writer needs every tensor of a file in memory at once.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import torch

from ..errors import LangshiftError
from ..models import INDEX_FILE, Checkpoint

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
NAMES = {v: k for k, v in DTYPES.items()}
_CHUNK = 16 << 20


def header(path: Path) -> tuple[int, dict]:
    """(offset of the data section, parsed header) of a safetensors file already checked by
    ``models.read_checkpoint``."""
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        return 8 + n, json.loads(fh.read(n))


def tensor_dtype(ckpt: Checkpoint, key: str) -> torch.dtype:
    name = header(ckpt.folder / ckpt.weight_map[key])[1][key]["dtype"]
    if name not in DTYPES:
        raise LangshiftError(f"--model={str(ckpt.folder)!r}: tensor {key} is stored as {name}; only float "
                             f"checkpoints ({', '.join(DTYPES)}) can be edited in place")
    return DTYPES[name]


def tensor_shape(ckpt: Checkpoint, key: str) -> list[int]:
    return header(ckpt.folder / ckpt.weight_map[key])[1][key]["shape"]


def read_rows(ckpt: Checkpoint, key: str, n: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """The first ``n`` rows of tensor ``key`` (its own dtype), or written into ``out`` (converted)."""
    from safetensors import safe_open

    with safe_open(ckpt.folder / ckpt.weight_map[key], framework="pt") as fh:
        rows = fh.get_slice(key)[:n]
    if out is None:
        return rows
    out.copy_(rows)
    return out


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _copy_range(src, dst, start: int, length: int) -> None:
    src.seek(start)
    while length > 0:
        chunk = src.read(min(_CHUNK, length))
        if not chunk:
            raise LangshiftError(f"{src.name}: ended early while copying; the file changed during the run")
        dst.write(chunk)
        length -= len(chunk)


def _write_file(src: Path, dst: Path, changes: dict[str, torch.Tensor | None], added: dict[str, torch.Tensor]
                ) -> int:
    """Stream ``src`` into ``dst`` with ``changes`` applied (None = drop) and ``added`` appended; returns
    the bytes of tensor data written."""
    start, head = header(src)
    meta = head.pop("__metadata__", None)
    order = sorted(head, key=lambda k: head[k]["data_offsets"][0])
    plan: list[tuple[str, dict, torch.Tensor | None]] = []
    for key in order:
        if key in changes:
            if changes[key] is not None:
                plan.append((key, {}, changes[key]))
        else:
            plan.append((key, head[key], None))
    plan += [(k, {}, t) for k, t in added.items()]
    new_head: dict = {"__metadata__": meta} if meta is not None else {}
    offset = 0
    for key, info, tensor in plan:
        if tensor is None:
            size = info["data_offsets"][1] - info["data_offsets"][0]
            new_head[key] = {"dtype": info["dtype"], "shape": info["shape"], "data_offsets": [offset, offset + size]}
        else:
            size = tensor.numel() * tensor.element_size()
            new_head[key] = {"dtype": NAMES[tensor.dtype], "shape": list(tensor.shape),
                             "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(new_head, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)   # safetensors pads its header to 8 bytes
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.write(struct.pack("<Q", len(encoded)))
        fout.write(encoded)
        for _key, info, tensor in plan:
            if tensor is None:
                a, b = info["data_offsets"]
                _copy_range(fin, fout, start + a, b - a)
            else:
                fout.write(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().data)
    return offset


def write_checkpoint(ckpt: Checkpoint, out: Path, changes: dict[str, torch.Tensor | None],
                     added: dict[str, tuple[str, torch.Tensor]] | None = None) -> list[str]:
    """Write ``ckpt``'s files into ``out`` with tensor ``changes`` (key → new tensor, or None to drop)
    and ``added`` tensors (key → (key of the tensor whose file receives it, tensor)); updates the index
    (weight_map, total_size). Returns the names of the files rewritten (the rest are linked)."""
    added = added or {}
    per_file: dict[str, dict[str, torch.Tensor]] = {}
    for key, (beside, tensor) in added.items():
        per_file.setdefault(ckpt.weight_map[beside], {})[key] = tensor
    touched = {ckpt.weight_map[k] for k in changes} | set(per_file)
    total = 0
    for name in ckpt.files:
        src, dst = ckpt.folder / name, out / name
        if name in touched:
            mine = {k: v for k, v in changes.items() if ckpt.weight_map[k] == name}
            total += _write_file(src, dst, mine, per_file.get(name, {}))
        else:
            _link_or_copy(src, dst)
            start, head = header(src)
            total += src.stat().st_size - start
    if ckpt.index is not None:
        weight_map = {k: v for k, v in ckpt.weight_map.items() if not (k in changes and changes[k] is None)}
        weight_map.update({k: ckpt.weight_map[b] for k, (b, _) in added.items()})
        index = {**ckpt.index, "metadata": {**ckpt.index.get("metadata", {}), "total_size": total},
                 "weight_map": dict(sorted(weight_map.items()))}
        (out / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return sorted(touched)
