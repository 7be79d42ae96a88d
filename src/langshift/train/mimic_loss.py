"""Mimic's losses over tensors: hidden states and span log-probabilities at matched positions (see ``mimic``)."""

from __future__ import annotations


def state_loss(student_states, teacher_states, student_pos, teacher_pos):
    """Mean over layers and matched positions of ‖s − t‖² / ‖t‖² (``-1`` = padding). States: one
    [batch, length, hidden] tensor per layer, in the same order for both models.

    Each position is scaled by the teacher's own norm there, so that positions with outsized states do not
    drown the rest; position 0 of either sequence (the shared start token, whose state is the sink) is left
    out.
    """
    import torch

    valid = student_pos.gt(0) & teacher_pos.gt(0)
    rows = valid.nonzero(as_tuple=True)[0]
    s_idx, t_idx = student_pos[valid], teacher_pos[valid]
    if rows.numel() == 0:  # nothing matched past the first token: no signal, but a graph for the backward
        return student_states[0].sum() * 0.0
    losses = []
    for s, t in zip(student_states, teacher_states, strict=True):
        a, b = s[rows, s_idx].float(), t[rows, t_idx].float()
        losses.append(((a - b).pow(2).sum(-1) / b.pow(2).sum(-1).clamp(min=1e-12)).mean())
    return torch.stack(losses).mean()


def token_logprobs(logits, ids):
    """log p(ids[i] | ids[:i]) for i ≥ 1, and 0 at i = 0 (the start token, given): [batch, length]."""
    import torch

    lp = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return torch.cat([lp.new_zeros(lp.shape[0], 1), lp], dim=1)


def next_token_loss(token_lp, mask):
    """The causal-LM loss (mean negative log-probability of every token but the first) from ``token_logprobs``
    and the attention mask."""
    tokens = mask[:, 1:].to(token_lp.dtype)
    return -(token_lp[:, 1:] * tokens).sum() / tokens.sum().clamp(min=1)


def likelihood_loss(student_lp, teacher_lp, student_pos, teacher_pos):
    """Mean over spans of (log p_student(span) − log p_teacher(span))², a span being the text between two
    consecutive matched positions (the first one starts after the start token). ``*_lp``: token
    log-probabilities [batch, length] (``token_logprobs``); positions ``-1`` are padding."""
    valid = student_pos.gt(0) & teacher_pos.gt(0)
    if not valid.any():
        return student_lp.sum() * 0.0
    # cumulative log-probability up to each matched position, then differences between neighbours
    cum_s = student_lp.cumsum(1).gather(1, student_pos.clamp(min=0))
    cum_t = teacher_lp.cumsum(1).gather(1, teacher_pos.clamp(min=0))
    prev_s = cum_s.roll(1, dims=1)
    prev_t = cum_t.roll(1, dims=1)
    prev_s[:, 0] = 0.0
    prev_t[:, 0] = 0.0
    diff = (cum_s - prev_s) - (cum_t - prev_t)
    return diff[valid].pow(2).mean()
