"""The chat frame: the text a chat template writes around every message (role words, a default system
prompt, newlines). A new target tokenizer that spells it differently from the base (``assistant`` as
``as s ist an t``) hands the transferred model a frame it never saw, built from approximated rows, and
the model ends its turn at once. Training the frame's base pieces into the new vocabulary keeps the
base's spelling, so the frame's rows are copied, not approximated.

Nothing here names a model family: the frame is found by rendering the base's own template around
marker messages.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

MARK = "Zq9marker"
# conversations whose rendering shows every part of the frame: a default system prompt and the opening of
# a reply (generation prompt), an explicit system message, and the end of a reply
_CONVERSATIONS = (
    ([{"role": "user", "content": MARK}], True),
    ([{"role": "system", "content": MARK}, {"role": "user", "content": MARK},
      {"role": "assistant", "content": MARK}], False),
)


def frame_segments(base) -> list[str]:
    """The pieces of text the base's chat template writes between messages (empty without a template)."""
    if not getattr(base, "chat_template", None):
        return []
    segments: list[str] = []
    for messages, gen in _CONVERSATIONS:
        try:
            text = base.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
        except Exception as exc:  # a template may refuse a role (no system turn): that part has no frame
            log.debug("chat template refused %s: %s", [m["role"] for m in messages], exc)
            continue
        for seg in text.split(MARK):
            if seg and seg not in segments:
                segments.append(seg)
    return segments


def _pieces(tok, text: str) -> list[str]:
    """Token strings of ``text`` without the special tokens (those are kept by id order anyway)."""
    specials = set(tok.all_special_tokens)
    return [t for t in tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])
            if t not in specials]


def frame_pieces(base) -> list[str]:
    """The base's non-special tokens in its chat frame, as texts, each once, in order of appearance.

    Trained as separate texts, repeated, they are learned early and whole, and never merged across two
    pieces (they never meet in a training text)."""
    out: list[str] = []
    for seg in frame_segments(base):
        for piece in _pieces(base, seg):
            text = base.convert_tokens_to_string([piece])
            if text and text not in out:
                out.append(text)
    return out


def frame_report(base, target) -> dict:
    """Does ``target`` spell the frame as ``base`` does? Segment by segment, with the first differences."""
    differs = []
    segments = frame_segments(base)
    for seg in segments:
        a, b = _pieces(base, seg), _pieces(target, seg)
        if a != b:
            differs.append({"text": seg, "base": a, "target": b})
    return {"segments": len(segments), "same": len(segments) - len(differs), "differs": differs[:5]}


def describe(report: dict) -> str:
    if not report["segments"]:
        return "no chat template"
    return f"chat frame: {report['same']}/{report['segments']} segments spelt as the base spells them"
