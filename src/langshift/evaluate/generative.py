"""Generative multiple choice (seed 004, MMMLU protocol): a native-language instruction asks for a
last line '<indicator>: LETTER'; the model answers greedily through its chat template; the LAST
answer marker in the reply (native or English form) gives the letter. When nothing can be extracted
the item is regenerated with sampling (seeded) up to ``regenerations`` times; still nothing counts
as wrong and as an extraction failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tqdm.auto import tqdm

from ..errors import ConfigError
from .mc import MCItem, mean_and_stderr
from .templates import LETTERS, get_template

# 1. Answer extraction ------------------------------------------------------------------------------


def _letter_group(n: int) -> str:
    """A letter among the first n: upper-case followed by a non-letter, or lower-case only when it is
    bracketed or ends the phrase ("(b)", "b)", "b." at line end) — so "Answer: a bit" is not an 'A'."""
    up, low = LETTERS[:n], LETTERS[:n].lower()
    return (rf"(?:[\(\[]\s*(?P<b>[{up}{low}])\s*[\)\]]"
            rf"|(?P<u>[{up}])(?![^\W\d_])"
            rf"|(?P<l>[{low}])(?=\s*(?:[\).:]\s*)?(?:$|\n|\*)))")


@dataclass(frozen=True)
class Extractor:
    pattern: re.Pattern
    bold: re.Pattern

    def __call__(self, text: str) -> str | None:
        """The letter of the last answer statement in ``text`` (None when there is none)."""
        best: tuple[int, str] | None = None
        for rx in (self.pattern, self.bold):
            for m in rx.finditer(text):
                letter = next(g for g in (m.group("b"), m.group("u"), m.group("l")) if g)
                if best is None or m.start() > best[0]:
                    best = (m.start(), letter.upper())
        return best[1] if best else None


def make_extractor(lang: str = "en", n_choices: int = 4, fallback_english: bool = True) -> Extractor:
    """An extractor for replies to a ``lang`` prompt: markers = the language's indicator and phrases,
    plus the English ones (models often switch to English for the last line)."""
    tpl, en = get_template(lang, fallback_english), get_template("en")
    markers = {tpl.answer, *tpl.markers, en.answer, *en.markers}
    marker_rx = "|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True))
    letter = _letter_group(n_choices)
    # marker, optional ':' (also full-width), optional '**' / quotes, then the letter
    pattern = re.compile(rf"(?i:{marker_rx})\s*(?:\*\*)?\s*[:：]?\s*(?:is\s+|es\s+)?[\*'\"“「]*\s*{letter}")
    bold = re.compile(rf"\*\*\s*{letter}\s*\*\*")
    return Extractor(pattern, bold)


def extract_answer(text: str, lang: str = "en", n_choices: int = 4) -> str | None:
    return make_extractor(lang, n_choices)(text)


# 2. Prompting and generation -------------------------------------------------------------------------

def build_prompt(item: MCItem, lang: str, fallback_english: bool = False) -> str:
    tpl = get_template(item.language or lang, fallback_english, param="language")
    return tpl.render_instruction(len(item.choices)) + "\n\n" + tpl.render_question(
        item.question, item.passage, item.choices, latin=True)


# Seed 004 (CLO), App. B: "for text generation, we used the following fixed generation configurations: top-p 0.9,
# temperature 0.6" (no length is given). The defaults whenever a reply is sampled.
PAPER_TEMPERATURE, PAPER_TOP_P = 0.6, 0.9


def chat_generate(model, tokenizer, prompts: list[str], max_new_tokens: int = 256, sample: bool = False,
                  seed: int = 0, temperature: float = PAPER_TEMPERATURE, batch_size: int = 4, progress: bool = True,
                  top_p: float = PAPER_TOP_P, system: str | None = None) -> list[str]:
    """Replies to single-turn user ``prompts`` through the chat template (greedy unless ``sample``; sampled
    at seed 004's temperature and top-p by default), after a ``system`` turn when given (App. F)."""
    import torch

    if getattr(tokenizer, "chat_template", None) is None:
        raise ConfigError("--model", getattr(tokenizer, "name_or_path", "?"),
                          "the tokenizer has no chat template; generative evaluation needs an instruct model")
    head = [{"role": "system", "content": system}] if system else []
    texts = [tokenizer.apply_chat_template(head + [{"role": "user", "content": p}], tokenize=False,
                                           add_generation_prompt=True) for p in prompts]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    outs: list[str] = []
    device = next(model.parameters()).device
    try:
        for start in tqdm(range(0, len(texts), batch_size), desc="generating", disable=not progress):
            chunk = texts[start:start + batch_size]
            enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            kwargs = dict(max_new_tokens=max_new_tokens, pad_token_id=pad_id, do_sample=sample)
            if sample:
                kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
            else:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            with torch.random.fork_rng(devices=[]), torch.inference_mode():
                torch.manual_seed(seed + start)
                gen = model.generate(**enc, **kwargs)
            outs += tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return outs


def evaluate_generative_mc(model, tokenizer, items: list[MCItem], lang: str = "en", max_new_tokens: int = 256,
                           regenerations: int = 3, seed: int = 0, batch_size: int = 4,
                           fallback_english: bool = False, progress: bool = True) -> dict:
    """Greedy answers, extraction of the last marker, up to ``regenerations`` sampled retries."""
    if regenerations < 0:
        raise ConfigError("regenerations", regenerations, "must be 0 or more")
    prompts = [build_prompt(it, lang, fallback_english) for it in items]
    extractors = [make_extractor(it.language or lang, len(it.choices), True) for it in items]
    replies = chat_generate(model, tokenizer, prompts, max_new_tokens, batch_size=batch_size, progress=progress)
    answers = [ex(r) for ex, r in zip(extractors, replies, strict=True)]
    attempts = [1] * len(items)
    for round_ in range(1, regenerations + 1):
        todo = [i for i, a in enumerate(answers) if a is None]
        if not todo:
            break
        again = chat_generate(model, tokenizer, [prompts[i] for i in todo], max_new_tokens, sample=True,
                              seed=seed + 1000 * round_, batch_size=batch_size, progress=progress)
        for i, reply in zip(todo, again, strict=True):
            replies[i], answers[i] = reply, extractors[i](reply)
            attempts[i] += 1
    correct = [float(a is not None and LETTERS.index(a) == it.answer) for a, it in zip(answers, items, strict=True)]
    acc, se = mean_and_stderr(correct)
    failures = [i for i, a in enumerate(answers) if a is None]
    return {"n": len(items), "acc": acc, "acc_stderr": se, "extraction_failures": len(failures),
            "regenerated": sum(a > 1 for a in attempts),
            "predictions": [{"id": it.id, "answer": LETTERS[it.answer], "pred": a, "attempts": n, "reply": r}
                            for it, a, n, r in zip(items, answers, attempts, replies, strict=True)]}
