"""Memory of `langshift transfer` on a model shaped like Llama-3-8B where it matters, against the naive
path (the whole model loaded in float32, transferred in memory, saved).

The synthetic model: hidden 4096, intermediate 14336, 32 heads / 8 KV heads, an untied head, bf16,
SmolLM2's real 49,152-token vocabulary, --layers decoder layers (the body is what the lean path never
reads, so more layers only widen the gap), one safetensors shard per layer plus one for the embeddings
and one for the head; random weights written shard by shard (never the whole model in RAM). Target:
the 32k Spanish byte-level BPE of the transfer benchmarks (bench/transfer_data.py). Method: fvt.

Each variant runs in its own process; its peak RSS is that process's ru_maxrss (os.wait4). Checks:
every output vocabulary tensor is bf16, every other tensor is bit-identical to the input, and the lean
rows equal the naive float32 rows rounded to bf16. Run:

    python bench/scale.py            # writes bench/results/scale.json (work files under bench/.work/scale)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

import transfer_data as data

RESULTS = Path(__file__).parent / "results" / "scale.json"
WORK = data.WORK / "scale"
VOCAB = ("model.embed_tokens.weight", "lm_head.weight")
LEAN = "import sys; from langshift.cli import main; sys.exit(main(sys.argv[1:]))"   # `langshift ...`
NAIVE = """
import sys, time
from langshift.models import load_model, load_tokenizer
from langshift.transfer.apply import save_transferred, transfer
model_dir, tok_dir, out = sys.argv[1:4]
source_tok, target_tok = load_tokenizer(model_dir, "--model"), load_tokenizer(tok_dir)
model = load_model(model_dir)                       # the old path: the whole model in float32
model, prov = transfer(model, source_tok, target_tok, "fvt")
save_transferred(model, target_tok, out, overwrite=True, summary=prov.summary())
"""


def synthetic_model(folder: Path, layers: int, seed: int = 0) -> Path:
    """A bf16 Llama-3-8B-shaped checkpoint with SmolLM2's tokenizer, written one shard at a time."""
    from safetensors.torch import save_file
    from transformers import LlamaConfig

    from langshift.models import load_tokenizer
    from langshift.resources import BUILTIN_MODEL

    if (folder / "model.safetensors.index.json").is_file():
        return folder
    tok = load_tokenizer(BUILTIN_MODEL)
    hidden, inter, heads, kv = 4096, 14336, 32, 8
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv, tie_word_embeddings=False,
                         max_position_embeddings=8192, rope_theta=500000.0, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, dtype="bfloat16")
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return (torch.randn(*shape, generator=gen) * 0.02).to(torch.bfloat16)

    head_dim = hidden // heads

    def layer(i: int) -> dict[str, torch.Tensor]:
        p = f"model.layers.{i}."
        return {p + "self_attn.q_proj.weight": rand(hidden, hidden),
                p + "self_attn.k_proj.weight": rand(kv * head_dim, hidden),
                p + "self_attn.v_proj.weight": rand(kv * head_dim, hidden),
                p + "self_attn.o_proj.weight": rand(hidden, hidden),
                p + "mlp.gate_proj.weight": rand(inter, hidden), p + "mlp.up_proj.weight": rand(inter, hidden),
                p + "mlp.down_proj.weight": rand(hidden, inter),
                p + "input_layernorm.weight": torch.ones(hidden, dtype=torch.bfloat16),
                p + "post_attention_layernorm.weight": torch.ones(hidden, dtype=torch.bfloat16)}

    makers = [lambda: {"model.embed_tokens.weight": rand(len(tok), hidden)}]
    makers += [lambda i=i: layer(i) for i in range(layers)]
    makers.append(lambda: {"model.norm.weight": torch.ones(hidden, dtype=torch.bfloat16),
                           "lm_head.weight": rand(len(tok), hidden)})
    weight_map, total = {}, 0
    for n, make in enumerate(makers):   # one shard in memory at a time
        name = f"model-{n + 1:05d}-of-{len(makers):05d}.safetensors"
        tensors = make()
        save_file(tensors, tmp / name, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, name))
        total += sum(t.numel() * t.element_size() for t in tensors.values())
        del tensors
    (tmp / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    config.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(folder)
    return folder


def run_child(argv: list[str]) -> dict:
    """Run ``argv``; its wall seconds and peak RSS (GiB, ru_maxrss of that process alone)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[:4]} failed with status {status}")
    return {"wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_gib": round(usage.ru_maxrss / 2**20, 3)}


def describe(folder: Path) -> dict:
    """Bytes on disk, bytes newly written (not hard-linked), dtypes of the vocabulary tensors."""
    from langshift.models import read_checkpoint
    from langshift.transfer.shards import header

    ckpt = read_checkpoint(folder)
    files = [folder / f for f in ckpt.files]
    dtypes = {}
    for key in VOCAB:
        dtypes[key] = header(folder / ckpt.weight_map[key])[1][key]["dtype"]
    return {"bytes": sum(f.stat().st_size for f in files),
            "bytes_new": sum(f.stat().st_size for f in files if f.stat().st_nlink == 1),
            "vocab_dtypes": dtypes}


def compare(src: Path, lean: Path, naive: Path) -> dict:
    """Body tensors of the lean output bit-identical to the input; lean rows == naive rows in bf16."""
    from safetensors import safe_open

    from langshift.models import read_checkpoint

    a, b, c = read_checkpoint(src), read_checkpoint(lean), read_checkpoint(naive)
    identical, body = 0, [k for k in a.weight_map if k not in VOCAB]
    for key in body:
        with safe_open(src / a.weight_map[key], "pt") as fa, safe_open(lean / b.weight_map[key], "pt") as fb:
            ta, tb = fa.get_tensor(key), fb.get_tensor(key)
            identical += ta.dtype == tb.dtype and torch.equal(ta.view(torch.int16), tb.view(torch.int16))
    rows_equal = {}
    for key in VOCAB:
        with safe_open(lean / b.weight_map[key], "pt") as fb, safe_open(naive / c.weight_map[key], "pt") as fc:
            rows_equal[key] = bool(torch.equal(fb.get_tensor(key), fc.get_tensor(key).to(torch.bfloat16)))
    return {"body_tensors": len(body), "body_bit_identical": int(identical), "lean_rows_equal_naive_bf16": rows_equal}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=32000, help="target tokenizer size")
    args = ap.parse_args()
    start = time.perf_counter()
    tok_dir = data.target_tokenizer(args.vocab)
    model_dir = synthetic_model(WORK / f"llama8b-shape-{args.layers}l", args.layers)
    made = time.perf_counter() - start
    lean_out, naive_out = WORK / "out-lean", WORK / "out-naive"
    for out in (lean_out, naive_out):
        shutil.rmtree(out, ignore_errors=True)
    env_py = sys.executable
    lean = run_child([env_py, "-c", LEAN, "transfer", "--model", str(model_dir), "--tokenizer", str(tok_dir),
                      "--method", "fvt", "--out", str(lean_out)])
    naive = run_child([env_py, "-c", NAIVE, str(model_dir), str(tok_dir), str(naive_out)])
    lean.update(describe(lean_out))
    naive.update(describe(naive_out))
    checks = compare(model_dir, lean_out, naive_out)
    src = describe(model_dir)
    result = {
        "model": {"shape": "Llama-3-8B (hidden 4096, intermediate 14336, 32/8 heads, untied head)",
                  "layers": args.layers, "source_vocab": 49152, "target_vocab": args.vocab, "dtype": "bfloat16",
                  "shards": len(read_shards(model_dir)), "bytes": src["bytes"]},
        "method": "fvt", "lean": lean, "naive_float32": naive,
        "peak_rss_ratio": round(lean["peak_rss_gib"] / naive["peak_rss_gib"], 3),
        "wall_ratio": round(lean["wall_s"] / naive["wall_s"], 3), "checks": checks,
        "setup_s": round(made, 1), "load_avg": os.getloadavg()[0],
    }
    ok = (result["peak_rss_ratio"] <= 0.5 and set(lean["vocab_dtypes"].values()) == {"BF16"}
          and checks["body_bit_identical"] == checks["body_tensors"])
    result["must_show_met"] = ok
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def read_shards(folder: Path) -> list[str]:
    from langshift.models import read_checkpoint

    return read_checkpoint(folder).files


if __name__ == "__main__":
    main()
