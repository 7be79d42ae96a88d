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


def token_logprobs(logits, ids, mask):
    """log p(ids[i] | ids[:i]) for i ≥ 1, 0 at i = 0 (the start token, given) and on padding: [batch, length].
    CLO's ``token_logps`` with every real token counted (it upcasts only those positions)."""
    import torch

    from .clo_loss import token_logps

    lp, _ = token_logps(logits, ids.masked_fill(mask == 0, -100))
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
    import torch

    valid = student_pos.gt(0) & teacher_pos.gt(0)
    if not valid.any():
        return student_lp.sum() * 0.0
    # cumulative log-probability up to each matched position, then differences between neighbours
    def spans(lp, pos):
        cum = lp.cumsum(1).gather(1, pos.clamp(min=0))
        return torch.diff(cum, dim=1, prepend=cum.new_zeros(cum.shape[0], 1))

    return (spans(student_lp, student_pos) - spans(teacher_lp, teacher_pos))[valid].pow(2).mean()
