"""Does a target tokenizer hold the special tokens the source model relies on?

A model ends its replies with eos, may start with bos, pads batches with pad, and its chat template
writes marker tokens (``<|im_start|>``). A target tokenizer that cannot write one of them as a single
token leaves the transferred model with null ids in its config or a chat template over text pieces.
``langshift tokenizer train --base MODEL`` keeps them all; this check catches a tokenizer made
elsewhere before any model is loaded.
"""

from __future__ import annotations

from ..errors import ConfigError

ROLES = ("bos", "eos", "pad")


def missing_specials(source_tok, target_tok) -> list[tuple[str, str]]:
    """(what needs it, token) for each special token of the source that the target cannot write as one
    token: the bos/eos/pad roles (kept when the target has its own token in the role, or the same
    string in its vocabulary, which the transfer maps by content) and the markers of the chat template
    the transferred model will carry (the target's own, else the source's)."""
    vocab = target_tok.get_vocab()
    missing = []
    for role in ROLES:
        token = getattr(source_tok, f"{role}_token", None)
        own = getattr(target_tok, f"{role}_token", None)
        if token is None or (own is not None and own in vocab) or token in vocab:
            continue
        missing.append((role, token))
    template = getattr(target_tok, "chat_template", None) or getattr(source_tok, "chat_template", None)
    if isinstance(template, str):
        named = {token for _, token in missing}
        for token in source_tok.all_special_tokens:
            if token in template and token not in vocab and token not in named:
                missing.append(("chat template", token))
    return missing


def check_target_specials(source_tok, target_tok, param: str = "--tokenizer", value: object = None) -> None:
    """Refuse a target tokenizer that lacks a special token the model needs (see ``missing_specials``).

    The choice is to refuse rather than repair: an eos/bos/marker the target cannot write has no row to
    copy and no string the model was trained to emit, so any repair would make up behaviour."""
    missing = missing_specials(source_tok, target_tok)
    if missing:
        listed = ", ".join(f"{token!r} ({why})" for why, token in missing)
        raise ConfigError(param, value, f"lacks special token(s) the model needs: {listed}; train the tokenizer "
                                        "with `langshift tokenizer train --base MODEL` (keeps the base's special "
                                        "tokens and chat template) or add these tokens to it (or transfer anyway: "
                                        "--no-check-specials)")
