"""Token-level code-switching decided by an LLM (seed 003, App. A.1): the unrelated filter, then annotation
(1) vs replacement (2), asked of an OpenAI-compatible endpoint (the last ``\\box(n)`` of its reply) or a
local chat model (the likelier digit after "Formatting result: \\box("). ``detect.py`` wires it in."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ..errors import ConfigError

TOKEN = ("token-annt", "token-repl")


# The prompts ------------------------------------------------------------------------------------

# Seed 003, App. A.1, verbatim except "English"/"Chinese" in the task line, which name the run's languages.
CLASSIFY = """Code-switching can be classified more finely according to different characteristics and uses. \
Here are some common types:

1. Annotation: In this case, another language is used to explain or define a noun before or after it. For \
example: During the festival, we watched a dragon dance (舞龙). In this sentence, the word "舞龙" serves as an \
annotation for "dragon dance".
2. Replacement: A specific word is replaced by a foreign word. For example: During the festival, we watched a \
舞龙. In this sentence, the word "舞龙" replaces the English word "dragon dance".

Given an {a} sentence containing {b} code-switching, please classify the sentence according to the above two \
types.

Examples:

[English Sentence]: During the festival, we watched a dragon dance (舞龙), which is a traditional Chinese \
performance.

[Answer]: "舞龙" appears after "dragon dance", which explains this English word in Chinese and is its annotation. \
Formatting result: \\box(1)

[English Sentence]: We enjoyed some delicious food at a nearby 茶馆.

[Answer]: The word "茶馆" is directly used as part of the sentence. It can be assumed that the original word is \
"teahouse", but it is directly replaced by "茶馆". Formatting result: \\box(2)

The following is your task. You can do a brief analysis, but please be sure to output it in the format of the \
example at the end.

[{a} Sentence]: {sentence}

[Answer]:"""
# The paper prompts the same model to filter out unrelated segments but does not print that prompt; ours
# follows the shape of the one above.
UNRELATED = """Code-switching means using words or sentences of another language inside a text on purpose, for \
example to explain a word by its translation, or in place of a word. Some foreign-looking text is not \
code-switching: names of people and places, loanwords that are ordinary {a} words, text in a third language, \
or nonsense.

Given an {a} sentence that seems to contain {b} words, decide:
1. Code-switching: {b} words or phrases are used on purpose, beside or in place of {a} words.
2. Unrelated: the foreign-looking text is a name, an ordinary {a} loanword, another language than {b}, or \
nonsense.

You can do a brief analysis, but please be sure to end with "Formatting result: \\box(1)" or \
"Formatting result: \\box(2)".

[{a} Sentence]: {sentence}

[Answer]:"""
_BOX = re.compile(r"\\box(?:ed)?\s*[({]\s*([12])\s*[)}]")
ANSWER_PREFIX = "Formatting result: \\box("


def parse_box(reply: str | None) -> int | None:
    """The last ``\\box(n)`` (or ``\\boxed{n}``) of a reply: 1 or 2, None when there is none."""
    found = _BOX.findall(reply or "")
    return int(found[-1]) if found else None


class EndpointChooser:
    """Replies from an OpenAI-compatible chat endpoint (``evaluate.judge.Endpoint``), one per prompt."""

    def __init__(self, endpoint):
        self.endpoint = endpoint

    def __call__(self, prompts: Sequence[str]) -> list[tuple[int | None, str]]:
        out = []
        for p in prompts:
            reply = self.endpoint.chat(p)
            out.append((parse_box(reply), reply))
        return out


class LocalChooser:
    """A local chat model continues the chat-templated prompt with ``ANSWER_PREFIX``; the verdict is the
    digit (1 or 2) it gives the higher next-token probability — the whole answer in one forward pass."""

    def __init__(self, model, tokenizer, batch_size: int = 8):
        if getattr(tokenizer, "chat_template", None) is None:
            raise ConfigError("llm", getattr(tokenizer, "name_or_path", "?"),
                              "the tokenizer has no chat template; give an instruct model")
        ids = [tokenizer.encode(d, add_special_tokens=False) for d in "12"]
        if any(len(x) != 1 for x in ids):
            raise ConfigError("llm", getattr(tokenizer, "name_or_path", "?"),
                              "its tokenizer splits the digits 1 and 2; give a model with digit tokens")
        self.model, self.tokenizer, self.batch_size, self.digits = model, tokenizer, batch_size, [i[0] for i in ids]

    def __call__(self, prompts: Sequence[str]) -> list[tuple[int | None, str]]:
        import torch

        tok = self.tokenizer
        texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                         add_generation_prompt=True) + ANSWER_PREFIX for p in prompts]
        side, tok.padding_side = tok.padding_side, "left"     # the last position is every row's next token
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        device = next(self.model.parameters()).device
        out = []
        try:
            for start in range(0, len(texts), self.batch_size):
                enc = tok(texts[start:start + self.batch_size], return_tensors="pt", padding=True,
                          add_special_tokens=False).to(device)
                with torch.inference_mode():
                    logits = self.model(**enc).logits[:, -1, self.digits].float()
                prob = torch.softmax(logits, dim=-1)
                for row in prob.tolist():
                    choice = 1 if row[0] >= row[1] else 2
                    out.append((choice, f"p(1)={row[0]:.4f} p(2)={row[1]:.4f}"))
        finally:
            tok.padding_side = side
        return out


def refine_tokens(rows: list[dict], choose: Callable, langs: Sequence[str], unrelated_filter: bool = True) -> dict:
    """Token-level rows through the unrelated filter, then annotation (1) vs replacement (2)."""
    from ..translate.llm import language_name

    todo = [k for k, r in enumerate(rows) if r["label"] in TOKEN]
    info = {"candidates": len(todo), "unrelated": 0, "unparsed": 0, "unrelated_filter": unrelated_filter}

    def names(r):
        a = r["doc_lang"]
        return language_name(a), language_name(next(x for x in langs if x != a))

    if unrelated_filter and todo:
        verdicts = choose([UNRELATED.format(a=a, b=b, sentence=rows[k]["text"]) for k in todo
                           for a, b in [names(rows[k])]])
        keep = []
        for k, (v, reply) in zip(todo, verdicts, strict=True):
            rows[k]["heuristic"], rows[k]["unrelated_reply"] = rows[k]["label"], reply
            if v == 2:
                rows[k]["label"] = "unrelated"
                info["unrelated"] += 1
            else:
                info["unparsed"] += v is None
                keep.append(k)
        todo = keep
    if todo:
        verdicts = choose([CLASSIFY.format(a=a, b=b, sentence=rows[k]["text"]) for k in todo
                           for a, b in [names(rows[k])]])
        for k, (v, reply) in zip(todo, verdicts, strict=True):
            rows[k].setdefault("heuristic", rows[k]["label"])
            rows[k]["llm_reply"] = reply
            if v is None:
                info["unparsed"] += 1
            else:
                rows[k]["label"] = TOKEN[v - 1]
    return info
