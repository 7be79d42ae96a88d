"""Pairwise judging as seed 004 (App. C) does it: AlpacaEval's ranking prompt, two models' outputs on the
same prompts shown to a judge model behind an OpenAI-compatible chat endpoint in an order randomised per
item (seeded). For target-language instructions the prompt carries the paper's extra clause (an answer in
another language than the instruction's counts against it); English instructions get the original
AlpacaEval prompt unchanged, as in the paper.

Verdicts are kept per item (``A`` wins, ``B`` wins, ``tie``); win rate of A = (wins + ties/2) / n with
the standard error of that mean. Requests are retried with exponential backoff; when the endpoint keeps
failing, the verdicts so far are written and a clear error is raised. Nothing is ever guessed: without
an endpoint the judge is skipped.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, LangshiftError
from .mc import mean_and_stderr

# Seed 004, App. C (AlpacaEval's ranking annotator): system and user prompt as printed there.
SYSTEM = ("You are a highly efficient assistant, who evaluates and rank large language models (LLMs) based on the "
          "quality of their responses to given prompts. This process will create a leaderboard reflecting the most "
          "accurate and human-preferred answers.")
USER = """I require a leaderboard for various large language models. I'll provide you with prompts given to these \
models and their corresponding responses. Your task is to assess these responses, ranking the models in order of \
preference from a human perspective. Once ranked, please output the results in a structured JSON format for the \
make_partial_leaderboard function.

## Prompt
{{
  "instruction": "{instruction}"
}}

## Model Outputs

Here are the unordered outputs from the models. Each output is associated with a specific model, identified by a \
unique model identifier.

{{
  {{
    "model": "m",
    "output": "{output_1}"
  }},
  {{
    "model": "M",
    "output": "{output_2}"
  }}
}}

## Task
Evaluate and rank the models based on the quality and relevance of their outputs. The ranking should be such that \
the model with the highest quality output is ranked first.{clause}
{format}"""
# The paper's addition for every language but English.
LANGUAGE_CLAUSE = (" Additionally, since the purpose is to measure multilinguality, if a model responds in a "
                   "language different from the instruction's language, this should be reflected in the evaluation.")
# AlpacaEval passes make_partial_leaderboard as a function-calling schema; a plain chat endpoint gets the same
# schema in words instead.
FORMAT = ('Reply with the JSON object only: {"ordered_models": [{"model": "<m or M>", "rank": 1}, '
          '{"model": "<m or M>", "rank": 2}]}.')


def ranking_messages(instruction: str, output_1: str, output_2: str, lang: str | None) -> list[dict]:
    """Chat messages for one comparison; the language clause unless ``lang`` is English ('en')."""
    clause = "" if (lang or "").lower().split("-")[0] == "en" else LANGUAGE_CLAUSE
    user = USER.format(instruction=instruction, output_1=output_1, output_2=output_2, clause=clause, format=FORMAT)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


class JudgeError(LangshiftError):
    """The endpoint failed after every retry; ``partial`` holds the verdicts obtained before."""

    def __init__(self, msg: str, partial: list[dict]):
        super().__init__(msg)
        self.partial = partial


@dataclass
class Endpoint:
    url: str
    model: str
    api_key: str | None = None
    timeout: float = 60.0
    retries: int = 4
    backoff: float = 2.0
    temperature: float = 0.0

    def chat(self, prompt: str | list[dict]) -> str:
        """The judge's reply text (POST {url}/chat/completions) to a user prompt or a list of chat messages,
        retried with exponential backoff."""
        url = self.url.rstrip("/") + ("" if self.url.rstrip("/").endswith("/chat/completions")
                                      else "/chat/completions")
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        body = json.dumps({"model": self.model, "temperature": self.temperature, "messages": messages}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.retries + 1):
            try:
                req = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    data = json.loads(resp.read().decode("utf-8"))
                return data["choices"][0]["message"]["content"]
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError, KeyError,
                    IndexError, TypeError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if attempt < self.retries:
                time.sleep(self.backoff * (2 ** attempt))
        raise LangshiftError(f"judge endpoint {url} failed {self.retries + 1} times (last: {last})")


# 1. Verdict parsing -------------------------------------------------------------------------------

_ENTRY = re.compile(r"\{[^{}]*\"model\"[^{}]*\}")
_IDS = {"m": "1", "M": "2"}


def parse_ranking(reply: str) -> str | None:
    """'1' (model m, the first output), '2' (model M) or 'tie' from the judge's leaderboard JSON; None when
    it ranks neither. Accepts ``{"ordered_models": [{"model": .., "rank": ..}, ..]}`` or the bare entries."""
    ranks: dict[str, float] = {}
    for m in _ENTRY.findall(reply):
        try:
            entry = json.loads(m)
            model, rank = str(entry["model"]).strip(), float(entry["rank"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        if model in _IDS:
            ranks[model] = rank
    if len(ranks) == 2:
        return "tie" if ranks["m"] == ranks["M"] else _IDS[min(ranks, key=ranks.get)]
    if len(ranks) == 1 and next(iter(ranks.values())) == 1:  # only the winner named
        return _IDS[next(iter(ranks))]
    return None


# 2. Pairwise comparison -----------------------------------------------------------------------------

def compare(instructions: Sequence[str], outputs_a: Sequence[str], outputs_b: Sequence[str],
            ask: Callable[[list[dict]], str], seed: int = 0, on_verdict: Callable[[dict], None] | None = None,
            langs: str | Sequence[str | None] | None = None) -> dict:
    """Judge every item with ``ask(messages) -> reply``; A/B order randomised per item with ``seed``.

    ``langs``: the instructions' language (one code or one per item); English ('en') items get the original
    AlpacaEval prompt, any other (or unknown: None) the prompt with the language clause."""
    if not (len(instructions) == len(outputs_a) == len(outputs_b)) or not instructions:
        raise ConfigError("outputs", (len(instructions), len(outputs_a), len(outputs_b)),
                          "need the same non-zero number of instructions and outputs of both models")
    langs = [langs] * len(instructions) if langs is None or isinstance(langs, str) else list(langs)
    if len(langs) != len(instructions):
        raise ConfigError("langs", len(langs), f"give one language per instruction ({len(instructions)})")
    rng = random.Random(seed)
    swaps = [rng.random() < 0.5 for _ in instructions]  # drawn up front: a retry never changes the order
    verdicts: list[dict] = []
    for i, (ins, a, b) in enumerate(zip(instructions, outputs_a, outputs_b, strict=True)):
        first, second = (b, a) if swaps[i] else (a, b)
        try:
            reply = ask(ranking_messages(ins, first, second, langs[i]))
        except LangshiftError as exc:
            raise JudgeError(f"{exc}; {len(verdicts)} of {len(instructions)} items judged before the failure",
                             verdicts) from exc
        shown = parse_ranking(reply)
        winner = None if shown is None else "tie" if shown == "tie" else (
            ("B" if shown == "1" else "A") if swaps[i] else ("A" if shown == "1" else "B"))
        v = {"index": i, "lang": langs[i], "swapped": swaps[i], "shown_winner": shown, "winner": winner, "reply": reply[:500]}
        verdicts.append(v)
        if on_verdict:
            on_verdict(v)
    return summarise(verdicts)


def summarise(verdicts: list[dict]) -> dict:
    """Win rate of A (ties as ½) over items with a verdict, its standard error, and the counts."""
    scored = [{"A": 1.0, "B": 0.0, "tie": 0.5}[v["winner"]] for v in verdicts if v["winner"] is not None]
    rate, se = mean_and_stderr(scored) if scored else (float("nan"), float("nan"))
    return {"n": len(verdicts), "judged": len(scored), "win_rate_a": rate, "stderr": se,
            "wins_a": sum(v["winner"] == "A" for v in verdicts), "wins_b": sum(v["winner"] == "B" for v in verdicts),
            "ties": sum(v["winner"] == "tie" for v in verdicts),
            "unparsed": sum(v["winner"] is None for v in verdicts), "verdicts": verdicts}


def endpoint_from_args(url: str | None, model: str | None, key_env: str | None, **kw) -> Endpoint | None:
    """The endpoint, or None when no URL is configured (flag or $LANGSHIFT_JUDGE_URL)."""
    url = url or os.environ.get("LANGSHIFT_JUDGE_URL")
    if not url:
        return None
    if not model:
        raise ConfigError("--judge-model", model, "name the judge model served at the endpoint")
    key = None
    if key_env:
        key = os.environ.get(key_env)
        if key is None:
            raise ConfigError("--api-key-env", key_env, "this environment variable is not set; export it or "
                                                        "omit the flag for an endpoint without a key")
    return Endpoint(url, model, key, **kw)


def read_outputs(path, param: str) -> dict[str, dict]:
    """JSONL with ``instruction`` (or ``prompt``) and ``output`` (or ``response``) per line → by instruction."""
    from ..files import read_json_lines

    if not Path(path).is_file():
        raise ConfigError(param, str(path), "no such file; give a JSONL file of {instruction, output} lines")
    out: dict[str, dict] = {}
    for number, obj in read_json_lines(path, param):
        ins = obj.get("instruction", obj.get("prompt"))
        outp = obj.get("output", obj.get("response"))
        if not isinstance(ins, str) or not isinstance(outp, str):
            raise LangshiftError(f"{path}:{number}: needs string fields 'instruction' (or 'prompt') and 'output' "
                                 "(or 'response')")
        out[ins] = obj | {"instruction": ins, "output": outp}
    return out
