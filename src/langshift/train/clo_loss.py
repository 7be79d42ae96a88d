"""The CLO loss (seed 004, eqs. 8-12) as pure functions of log-probabilities.

Each English pair (x_en, y_en) with its translation (x_t, y_t) gives four rows, always in the same
batch and in this order:

    0  x_en → y_en   chosen      (English prompt, English answer)
    1  x_en → y_t    rejected    (English prompt, target-language answer)
    2  x_t  → y_t    chosen      (target prompt, target answer)
    3  x_t  → y_en   rejected    (target prompt, English answer)

    z_en = β·[(log π(y_en|x_en) − log π_ref(y_en|x_en)) − (log π(y_t|x_en) − log π_ref(y_t|x_en))]
    z_t  = β·[(log π(y_t|x_t)  − log π_ref(y_t|x_t))  − (log π(y_en|x_t) − log π_ref(y_en|x_t))]
    L    = λ·NLL(y_t|x_t) + (1−λ)·mean_i[−log σ(z_en,i) − log σ(z_t,i)]

log π(y|x) is the sum of the response tokens' log-probabilities (as in DPO). NLL is taken on row 2 only
(the target-language chosen row; ``nll="both"`` adds row 0, the ablation of Table 5) and normalised as
the mean per response token: the sum of −log p over every such token divided by their number (the usual
causal-LM loss; the paper's eq. 9 writes a per-sequence mean, which weighs long answers more and changes
the scale with answer length). The preference term is a mean over pairs.
"""

from __future__ import annotations

ROWS = (("x_en", "y_en"), ("x_en", "y_t"), ("x_t", "y_t"), ("x_t", "y_en"))
EN_CHOSEN, EN_REJECTED, T_CHOSEN, T_REJECTED = range(4)
NLL_ROWS = {"target": (T_CHOSEN,), "both": (EN_CHOSEN, T_CHOSEN)}


def pair_terms(policy_logps, ref_logps, beta: float) -> dict:
    """Per pair ``z_en``, ``z_t`` and the cross-lingual loss −log σ(z_en) − log σ(z_t) (rows as ``ROWS``)."""
    import torch.nn.functional as F

    ratio = policy_logps - ref_logps
    z_en = beta * (ratio[:, EN_CHOSEN] - ratio[:, EN_REJECTED])
    z_t = beta * (ratio[:, T_CHOSEN] - ratio[:, T_REJECTED])
    return {"z_en": z_en, "z_t": z_t, "cl": -F.logsigmoid(z_en) - F.logsigmoid(z_t)}


def clo_loss(policy_logps, ref_logps, target_nll, lam: float, beta: float) -> dict:
    """CLO loss of one whole batch from per-row sequence log-probs ``[N, 4]`` and its (mean) NLL.

    Returns the loss and its parts (``nll``, ``cl``, ``z_en``, ``z_t`` per pair, reward accuracy).
    """
    t = pair_terms(policy_logps, ref_logps, beta)
    cl = t["cl"].mean()
    accuracy = ((t["z_en"] > 0).float().mean() + (t["z_t"] > 0).float().mean()) / 2
    return {"loss": lam * target_nll + (1.0 - lam) * cl, "nll": target_nll, "cl": cl, "z_en": t["z_en"],
            "z_t": t["z_t"], "accuracy": accuracy}


def token_logps(logits, labels):
    """Log-probability of each next token (``[B, T-1]``, 0 where it does not count) and the mask of the
    positions that count (response tokens).

    Only those positions are upcast to float32 and normalised: prompts and padding are over 70% of a
    CLO batch's grid (four rows of mixed lengths padded to the longest), and their vocabulary-sized
    float32 copy, kept for the backward pass, would be the largest tensor of a step under gradient
    checkpointing (BENCHMARKS.md, CLO's log-probabilities: 0.25× the memory, the same bits)."""
    import torch

    labels = labels[:, 1:]
    mask = labels != -100
    counted = logits[:, :-1, :][mask].float()                       # [n, V]: the response positions only
    # gather − logsumexp: avoids materialising a second vocabulary-sized log_softmax tensor
    picked = counted.gather(-1, labels[mask].unsqueeze(-1)).squeeze(-1) - torch.logsumexp(counted, dim=-1)
    return torch.zeros(mask.shape, dtype=picked.dtype, device=picked.device).masked_scatter(mask, picked), mask


def nll_row_mask(n_rows: int, nll_rows=(T_CHOSEN,), device=None):
    """Which of ``n_rows`` pair-major rows the NLL term covers."""
    import torch

    return torch.isin(torch.arange(n_rows, device=device) % 4, torch.tensor(nll_rows, device=device))


def pair_logps_and_nll(logits, labels, nll_rows=(T_CHOSEN,)):
    """Sequence log-probs ``[N, 4]``, the summed NLL of the ``nll_rows`` rows' tokens and their number."""
    logps, mask = token_logps(logits, labels)
    seq = logps.sum(-1).view(-1, 4)
    rows = nll_row_mask(len(logps), nll_rows, logps.device)
    return seq, -logps[rows].sum(), mask[rows].sum()


def count_items(labels, nll_rows=(T_CHOSEN,)):
    """``[NLL tokens, pairs]`` of a collated batch: what the step's means divide by (float tensor)."""
    import torch

    rows = nll_row_mask(len(labels), nll_rows, labels.device)
    return torch.stack([(labels[rows, 1:] != -100).sum(), torch.tensor(len(labels) // 4, device=labels.device)]
                       ).float()
