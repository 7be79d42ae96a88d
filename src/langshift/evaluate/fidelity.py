"""Language fidelity (Marchisio et al. 2024, as docs/papers.md reads it): does the model answer in the
language it was asked in?

Per response: split into lines, keep lines of at least ``min_words`` words, identify each kept line's
language offline (fastText lid.176 "lite" through ``langshift.text.langid``).
  * LPR  = share of responses whose kept lines are all in the expected language (a response with no
    kept line passes: nothing in it is in another language — except an empty response, which fails:
    a model that ends its turn at once has not answered in the language either).
  * WPR  = among responses that pass LPR, share with no English word anywhere in the response. An
    English word is one of wordfreq's ``top_n`` English words that is at least ``margin`` Zipf units
    (1.5 = ~30×) more frequent in English than in the target language, so words shared with the target
    ("no", "me", "a", "hotel", Spanish "come"/"once") do not count against it, while "the", "which", "is"
    do (web corpora leak them into every language, so a plain frequency cut-off in the target fails). For
    a target without wordfreq data every top English word counts (a warning says so).
  * LCPR = harmonic mean of LPR and WPR.
LPR comes with its 95% interval (``lpr_low``, ``lpr_high``): Wilson over the replies, or with ``draws`` > 1
sampled replies per prompt a bootstrap over prompts (one prompt's draws are not independent items: a prompt the
model cannot answer in the language fails in every draw). Several draws narrow LPR where one sampled reply per
prompt is a coin toss per prompt; a paired comparison then compares each prompt's share of passing draws.
WPR has one too (``wpr_low``, ``wpr_high``): a bootstrap over prompts of its ratio.
``looping_responses`` counts replies that fall into a loop (a unit of 1–20 characters three or more times back
to back, over at least 24 characters: "te te te te …", "Y te dice: Y te dice: …"): language ID on such text is
close to a coin toss, so a weak model's LPR moves with its loops; the count says how much of a score is that.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache

from ..errors import ConfigError
from .intervals import bootstrap_ratio, wilson

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")

Detector = Callable[[list[str]], list[tuple[str, float]]]


# 1. English word list -------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def english_words(target_lang: str, top_n: int = 5000, margin: float = 1.5) -> frozenset[str]:
    """wordfreq's top English words minus those common in ``target_lang`` (documented in the module doc)."""
    from ..optional import require

    wf = require("wordfreq", "pip install wordfreq", "the English word list of language fidelity")
    words = [w for w in wf.top_n_list("en", top_n) if _WORD.fullmatch(w) and len(w) > 1]
    if target_lang == "en":
        return frozenset()
    if target_lang not in wf.available_languages():
        warnings.warn(f"wordfreq has no data for {target_lang!r}: every top-{top_n} English word counts as English",
                      stacklevel=2)
        return frozenset(words)
    return frozenset(w for w in words if wf.zipf_frequency(w, "en") - wf.zipf_frequency(w, target_lang) >= margin)


# 2. Scoring responses --------------------------------------------------------------------------------

def judge_lines(response: str, min_words: int = 5) -> list[str]:
    return [ln.strip() for ln in response.splitlines() if len(ln.split()) >= min_words]


_LOOP = re.compile(r"(.{1,20}?)\1{2,}", re.DOTALL)


def loops(response: str, min_span: int = 24) -> bool:
    """True when a unit of 1–20 characters comes three or more times back to back over ≥ ``min_span`` characters."""
    return any(m.end() - m.start() >= min_span for m in _LOOP.finditer(response))


def harmonic(a: float, b: float) -> float:
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def score_responses(responses: Sequence[str], lang: str, detect: Detector | None = None, min_words: int = 5,
                    english: frozenset[str] | None = None, max_examples: int = 5, draws: int = 1) -> dict:
    """LPR, WPR and LCPR of ``responses`` expected in ``lang``, with failing examples. With ``draws`` > 1 the
    responses are that many draws of the same prompts, draw after draw (``[p0, p1, …, p0, p1, …]``)."""
    if not responses:
        raise ConfigError("responses", [], "no responses to score")
    if draws < 1 or len(responses) % draws:
        raise ConfigError("draws", draws, f"{len(responses)} responses are not whole draws of the same prompts; "
                                          "give the replies of every prompt in every draw")
    n_prompts = len(responses) // draws
    if detect is None:
        from ..text.langid import detect
    english = english_words(lang) if english is None else english
    kept = [judge_lines(r, min_words) for r in responses]
    flat = [ln for lines in kept for ln in lines]
    labels = iter(detect(flat) if flat else [])
    line_pass, word_pass, fails_line, fails_word, per = [], [], [], [], []
    for r, lines in zip(responses, kept, strict=True):
        langs = [next(labels)[0] for _ in lines]
        ok_lines = bool(r.strip()) and all(x == lang for x in langs)
        line_pass.append(ok_lines)
        found = sorted({w.lower() for w in _WORD.findall(r)} & english) if ok_lines else []
        if ok_lines:
            word_pass.append(not found)
            if found and len(fails_word) < max_examples:
                fails_word.append({"response": r, "english_words": found[:10]})
        elif len(fails_line) < max_examples:
            fails_line.append({"response": r, "lines": [{"line": ln, "lang": x} for ln, x in zip(lines, langs,
                                                                                               strict=True)
                                                        if x != lang]})
        per.append({"line_pass": ok_lines, "word_pass": ok_lines and not found, "line_langs": langs,
                    "loops": loops(r)})
        if draws > 1:
            per[-1].update(prompt=(len(per) - 1) % n_prompts, draw=(len(per) - 1) // n_prompts)
    lpr = sum(line_pass) / len(line_pass)
    wpr = sum(word_pass) / len(word_pass) if word_pass else 0.0
    low, high = share_interval(per, "line_pass", n_prompts, draws)
    loop_low, loop_high = share_interval(per, "loops", n_prompts, draws)
    wpr_ci = wpr_interval(per)
    return {"n": len(responses), "lang": lang, "draws": draws, "prompts": n_prompts,
            "lpr": lpr, "lpr_low": low, "lpr_high": high,
            "wpr": wpr, **({"wpr_low": wpr_ci[0], "wpr_high": wpr_ci[1]} if wpr_ci else {}),
            "lcpr": harmonic(lpr, wpr),
            "responses_without_judged_lines": sum(not k for k in kept),
            "empty_responses": sum(not r.strip() for r in responses),
            "looping_responses": sum(p["loops"] for p in per), "looping_low": loop_low, "looping_high": loop_high,
            "line_failures": fails_line, "word_failures": fails_word, "per_response": per}


def share_per_prompt(per_response: list[dict], key: str = "line_pass") -> list[float]:
    """Each prompt's share of replies whose ``key`` is true (LPR pass, ``loops``); one reply per prompt when the
    replies carry no ``prompt`` field."""
    if not per_response or "prompt" not in per_response[0]:
        return [float(p[key]) for p in per_response]
    hits: dict[int, list[bool]] = {}
    for p in per_response:
        hits.setdefault(p["prompt"], []).append(p[key])
    return [sum(v) / len(v) for _, v in sorted(hits.items())]


def share_interval(per_response: list[dict], key: str, n_prompts: int, draws: int) -> tuple[float, float]:
    """95% interval of the share of replies whose ``key`` is true: Wilson over replies with one draw, else a
    bootstrap over prompts (a prompt's draws are not independent items)."""
    if draws == 1:
        return wilson(sum(bool(p[key]) for p in per_response), len(per_response))
    return bootstrap_ratio(share_per_prompt(per_response, key)) if n_prompts > 1 else (0.0, 1.0)


def wpr_interval(per_response: list[dict]) -> tuple[float, float] | None:
    """95% interval of WPR, the share of LPR-passing replies with no English word: a bootstrap over prompts (over
    replies with one draw) of passing-without-English ÷ passing, prompts with no passing reply left out (they
    add to neither count). None when fewer than two prompts have a passing reply. Every prompt has as many
    draws, so each prompt's shares stand in for its counts."""
    shares = [(w, ok) for w, ok in zip(share_per_prompt(per_response, "word_pass"),
                                       share_per_prompt(per_response, "line_pass"), strict=True) if ok]
    if len(shares) < 2:
        return None
    return bootstrap_ratio([w for w, _ in shares], [ok for _, ok in shares])


def evaluate_fidelity(model, tokenizer, prompts: Sequence[str], lang: str, max_new_tokens: int = 128,
                      batch_size: int = 4, min_words: int = 5, progress: bool = True, sample: bool = False,
                      temperature: float | None = None, top_p: float | None = None, seed: int = 0,
                      system: str | None = None, draws: int = 1) -> dict:
    """Generate chat replies to ``prompts`` (greedy, or sampled at seed 004's temperature 0.6 / top-p 0.9
    unless given; ``draws`` sampled replies per prompt) and score their language fidelity."""
    from .generative import PAPER_TEMPERATURE, PAPER_TOP_P, chat_generate

    if draws > 1 and not sample:
        raise ConfigError("--draws", draws, "greedy replies are the same in every draw; add --sample or give 1")
    replies: list[str] = []
    for k in range(draws):  # draw k's batches get seeds no other draw uses (chat_generate seeds seed + batch start)
        replies += chat_generate(model, tokenizer, list(prompts), max_new_tokens, sample=sample,
                                 seed=seed + k * len(prompts),
                                 temperature=PAPER_TEMPERATURE if temperature is None else temperature,
                                 top_p=PAPER_TOP_P if top_p is None else top_p, batch_size=batch_size,
                                 progress=progress, system=system)
    res = score_responses(replies, lang, min_words=min_words, draws=draws)
    res["responses"] = [{"prompt": p, "response": r, **({"draw": i // len(prompts)} if draws > 1 else {})}
                        for i, (p, r) in enumerate(zip(list(prompts) * draws, replies, strict=True))]
    return res
