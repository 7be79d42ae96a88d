"""Finding the parts of a model a stage trains: attention projections, embeddings, the LM head.

Model families name their attention projections differently (Llama ``q_proj``…``o_proj``, GPT-2
``c_attn``/``c_proj``, GPT-NeoX/Falcon ``query_key_value``/``dense``, OPT ``out_proj``, MPT ``Wqkv``).
A projection is recognised by two facts together: its own name is one of those leaf names, and one of
its parent modules is called like an attention block. Anything else is reported, never guessed.
"""

from __future__ import annotations

from ..errors import LangshiftError

PROJECTION_NAMES = frozenset({
    "q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "out_proj",  # Llama, Mistral, Qwen, Gemma, OPT, GPT-J
    "c_attn", "c_proj",                                              # GPT-2
    "query_key_value", "dense",                                       # GPT-NeoX, Falcon, BLOOM, Phi
    "query", "key", "value", "Wqkv", "wq", "wk", "wv", "wo",          # BERT-like, MPT, Meta reference code
})
ATTENTION_PARENTS = ("attn", "attention", "self_attn", "self_attention", "mixer")


def _is_attention_parent(name: str) -> bool:
    name = name.lower()
    return any(name == p or name.endswith("_" + p) or name.startswith(p) for p in ATTENTION_PARENTS)


def attention_projections(model) -> list[str]:
    """Qualified names of the attention projection modules (linear layers) of ``model``.

    Raises LangshiftError listing the model's module leaf names when none is found.
    """
    found = []
    for name, module in model.named_modules():
        parts = name.split(".")
        weight = getattr(module, "weight", None)
        if (len(parts) >= 2 and parts[-1] in PROJECTION_NAMES and weight is not None and weight.dim() == 2
                and any(_is_attention_parent(p) for p in parts[:-1])):
            found.append(name)
    if not found:
        leaves = sorted({n.split(".")[-1] for n, _ in model.named_modules() if n and not n.split(".")[-1].isdigit()})
        raise LangshiftError(
            f"--train=attention: found no attention projections in {type(model).__name__} (looked for modules named "
            f"{', '.join(sorted(PROJECTION_NAMES))} inside a module named like {', '.join(ATTENTION_PARENTS)}). "
            f"The model has modules named: {', '.join(leaves)}. Use --train all, or name the modules with a "
            "supported architecture")
    return found


def attention_leaf_names(model) -> list[str]:
    """The distinct leaf names of the attention projections (what peft's ``target_modules`` matches)."""
    return sorted({n.split(".")[-1] for n in attention_projections(model)})


def attention_parameter_names(model) -> list[str]:
    """Parameter names (weights and biases) that belong to the attention projections."""
    prefixes = tuple(n + "." for n in attention_projections(model))
    return [n for n, _ in model.named_parameters() if n.startswith(prefixes)]


def embedding_parameter_names(model) -> list[str]:
    """Parameter names of the input embedding matrix and (when untied) the LM head."""
    wanted = {id(model.get_input_embeddings().weight)}
    head = model.get_output_embeddings()
    if head is not None:
        wanted.add(id(head.weight))
    # named_parameters() lists a tied matrix once, under the input-embedding name.
    return [n for n, p in model.named_parameters() if id(p) in wanted]


def leaf_name(model, module) -> str:
    """The last part of ``module``'s name in ``model`` (what peft's ``target_modules`` matches)."""
    return next(n for n, m in model.named_modules() if m is module).split(".")[-1]


def vocab_modules(model) -> tuple[list[str], bool]:
    """The leaf names of the input embedding and, when untied, the LM head; and whether the two are tied."""
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    tied = head is None or head.weight is emb.weight
    return [leaf_name(model, emb)] + ([] if tied else [leaf_name(model, head)]), tied


def set_trainable(model, names: list[str] | None) -> int:
    """Freeze every parameter except ``names`` (None: train all). Returns the trainable count."""
    keep = None if names is None else set(names)
    count = 0
    for n, p in model.named_parameters():
        p.requires_grad_(keep is None or n in keep)
        count += p.numel() if p.requires_grad else 0
    return count
