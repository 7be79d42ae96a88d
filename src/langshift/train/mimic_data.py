"""Mimic's data: one text, two tokenizations, and the positions where both end a token (see ``mimic``)."""

from __future__ import annotations

from collections.abc import Iterator


def matched_positions(student_ends: list[int], teacher_ends: list[int]) -> list[tuple[int, int]]:
    """(student index, teacher index) for each character offset where both tokenizations end a token; where
    several tokens end at one offset (bytes of one character), the last of them, whose state has read it all."""
    last_s = {e: i for i, e in enumerate(student_ends)}
    last_t = {e: j for j, e in enumerate(teacher_ends)}
    return [(last_s[e], last_t[e]) for e in sorted(last_s.keys() & last_t.keys())]


def _chunks(path: str, tokenizer, seq_len: int) -> Iterator[str]:
    """Lines joined by newlines until the next would pass ``seq_len`` model tokens (a longer line alone)."""
    from ..engine import iter_documents

    parts: list[str] = []
    size = 0
    for line in iter_documents(path, "--text"):
        n = len(tokenizer(line, add_special_tokens=False)["input_ids"]) + 1
        if parts and size + n > seq_len:
            yield "\n".join(parts)
            parts, size = [], 0
        parts.append(line)
        size += n
    if parts:
        yield "\n".join(parts)


def _start_id(tokenizer) -> int | None:
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def mimic_examples(path: str, student_tok, teacher_tok, seq_len: int, stamp: object = None) -> Iterator[dict]:
    """One example a chunk: both tokenizations of the same string (the model's cut at ``seq_len`` tokens, the
    teacher's at the same character) and the matched positions. Both start with their BOS (else EOS) token:
    models park outsized "attention sink" states on the first token, so the sink then sits on a token the
    two share and the text's own states are comparable. ``stamp`` is unused here: the file's size and
    modification time, so that the cached dataset (keyed on these arguments) is rebuilt when the file changes."""
    s_start, t_start = _start_id(student_tok), _start_id(teacher_tok)
    s_head, t_head = [s_start] if s_start is not None else [], [t_start] if t_start is not None else []
    for text in _chunks(path, student_tok, seq_len - len(s_head)):
        s = student_tok(text, add_special_tokens=False, return_offsets_mapping=True)
        cut = seq_len - len(s_head)
        s_ids, s_ends = s["input_ids"][:cut], [e for _, e in s["offset_mapping"][:cut]]
        if len(s_ids) < 2:
            continue
        t = teacher_tok(text, add_special_tokens=False, return_offsets_mapping=True)
        keep = [j for j, (_, e) in enumerate(t["offset_mapping"]) if e <= s_ends[-1]]
        t_ids, t_ends = [t["input_ids"][j] for j in keep], [t["offset_mapping"][j][1] for j in keep]
        pairs = matched_positions(s_ends, t_ends)
        if pairs:
            yield {"student_ids": s_head + s_ids, "teacher_ids": t_head + t_ids,
                   "student_pos": [p + len(s_head) for p, _ in pairs],
                   "teacher_pos": [q + len(t_head) for _, q in pairs]}


def collate_mimic(examples: list[dict], student_pad: int, teacher_pad: int) -> dict:
    from ..evaluate.batching import pad_right

    s_ids, s_mask = pad_right([ex["student_ids"] for ex in examples], student_pad)
    t_ids, t_mask = pad_right([ex["teacher_ids"] for ex in examples], teacher_pad)
    return {"input_ids": s_ids, "attention_mask": s_mask, "teacher_ids": t_ids, "teacher_mask": t_mask,
            "student_pos": pad_right([ex["student_pos"] for ex in examples], -1)[0],
            "teacher_pos": pad_right([ex["teacher_pos"] for ex in examples], -1)[0]}
