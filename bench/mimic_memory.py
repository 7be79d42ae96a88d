"""Memory of `langshift train mimic`'s trained rows on a large vocabulary: a delta for the new rows (peft
TrainableTokens, what ``--rows new`` does) against training the whole matrices (``--rows all``).

The synthetic model: a Llama with a Llama-3-sized vocabulary (128,256 rows), hidden --hidden, an untied head,
one decoder layer, bf16 (the vocabulary matrices are what the two variants treat differently; the body is frozen
in both). --new rows train (the demo's 16,000 by default). Each variant runs in its own process: build the
model, ``mimic.freeze_but_rows``, then --steps AdamW steps of the next-token loss on random ids that include new
rows. Reported: the peak RSS above the built model (``ru_maxrss``), the trained parameters, and the AdamW state
(both moments) the optimizer holds. Check: in the delta variant every row outside the trained ones is bit-identical
after the steps, in both matrices. Run:

    python bench/mimic_memory.py                 # writes bench/results/mimic_memory.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

from langshift.files import atomic_write_json

RESULTS = Path(__file__).parent / "results" / "mimic_memory.json"


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(variant: str, args: argparse.Namespace) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from langshift.train import mimic

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=2 * args.hidden,
                         num_hidden_layers=1, num_attention_heads=16, num_key_value_heads=4,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    rows = list(range(args.vocab - args.new, args.vocab))
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "embed" in n or "lm_head" in n}
    built = rss_mib()
    trained, count = mimic.freeze_but_rows(model, None if variant == "all" else rows)
    opt = torch.optim.AdamW([p for p in trained.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.0)
    ids = torch.randint(0, args.vocab, (args.batch, args.seq_len))
    ids[:, ::2] = torch.randint(args.vocab - args.new, args.vocab, (args.batch, (args.seq_len + 1) // 2))
    for _ in range(args.steps):
        loss = trained(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    state = sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values() if t.dim() > 0)
    untouched = None
    if variant == "new":
        merged = trained.merge_and_unload()
        keep = torch.ones(args.vocab, dtype=torch.bool)
        keep[rows] = False
        untouched = all(torch.equal(p.detach()[keep], before[n][keep]) for n, p in merged.named_parameters()
                        if n in before)
    print(json.dumps({"variant": variant, "trained_parameters": count, "adamw_state_mib": round(state / 2**20),
                      "built_model_mib": round(built), "peak_above_model_mib": round(rss_mib() - built),
                      "other_rows_untouched": untouched}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=int, default=128256, help="vocabulary rows (Llama-3's)")
    ap.add_argument("--hidden", type=int, default=2048, help="model width")
    ap.add_argument("--new", type=int, default=16000, help="new rows that train")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--variant", choices=["all", "new"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        return one(args.variant, args)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k != "variant"]
    rows = []
    for variant in ("all", "new"):
        out = subprocess.run([sys.executable, __file__, *flags, f"--variant={variant}"], check=True,
                             capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(rows[-1])
    full, delta = rows
    summary = {"command": "python bench/mimic_memory.py " + " ".join(flags), "rows": rows,
               "peak_ratio_all_over_new": round(full["peak_above_model_mib"] / max(delta["peak_above_model_mib"], 1),
                                                2),
               "state_ratio_all_over_new": round(full["adamw_state_mib"] / max(delta["adamw_state_mib"], 1), 2)}
    print({k: v for k, v in summary.items() if k != "rows"})
    atomic_write_json(RESULTS, summary)
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
