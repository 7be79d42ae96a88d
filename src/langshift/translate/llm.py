"""Translation by an LLM behind an OpenAI-compatible chat endpoint (vLLM, llama.cpp server, OpenAI…).

One request per item (chat endpoints take one conversation each), sent by a few worker threads;
temperature 0; the prompt asks for the translation only. Transient failures (connection errors,
HTTP 429 and 5xx) are retried with exponential backoff; after the last retry the error names the
URL and the last failure. The API key is read from the environment variable named by ``api_key_env``.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tqdm.auto import tqdm

from ..errors import ConfigError, LangshiftError
from .apertium import match_case
from .base import TRANSLATORS, Translator

_TAG_HINT = {"NN": "noun", "NNS": "plural noun", "NNP": "proper noun", "NNPS": "plural proper noun",
             "VB": "verb", "JJ": "adjective", "RB": "adverb"}


def language_name(code: str) -> str:
    import langcodes

    try:
        return langcodes.Language.get(code).display_name()  # needs language_data (langcodes[data])
    except (LookupError, ValueError, ImportError):
        return code  # an ISO code is understood by chat models too


@TRANSLATORS.register("llm")
class LLMTranslator(Translator):
    """An OpenAI-compatible chat endpoint (``url``, ``model``, key from env var ``api_key_env``)."""

    name = "llm"

    def __init__(self, source_lang: str, target_lang: str, url: str = "", model: str = "", api_key_env: str = "OPENAI_API_KEY",
                 retries: int = 4, backoff: float = 1.0, timeout: float = 60.0, workers: int = 4,
                 max_tokens: int = 512):
        super().__init__(source_lang, target_lang)
        if not url.startswith(("http://", "https://")):
            raise ConfigError("url", url, "give the endpoint's base URL, e.g. http://127.0.0.1:8000/v1")
        if not model:
            raise ConfigError("model", model, "give the model name the endpoint serves")
        if retries < 0 or workers < 1:
            raise ConfigError("retries/workers", (retries, workers), "retries must be >= 0 and workers >= 1")
        self.url = url if url.rstrip("/").endswith("/chat/completions") else url.rstrip("/") + "/chat/completions"
        self.model, self.api_key_env = model, api_key_env
        self.retries, self.backoff, self.timeout, self.workers = retries, backoff, timeout, workers
        self.max_tokens = max_tokens
        self.source_name, self.target_name = language_name(source_lang), language_name(target_lang)

    def options(self) -> dict[str, Any]:
        return {"url": self.url, "model": self.model}

    # --- 1. Prompts ------------------------------------------------------------------------------
    def _messages(self, text: str, word_tag: str | None, is_word: bool) -> list[dict[str, str]]:
        system = (f"You translate {self.source_name} into {self.target_name}. Reply with the translation only: "
                  "no quotes, no notes, no explanations, no original text.")
        if is_word:
            kind = _TAG_HINT.get(word_tag or "", "word")
            user = f"Translate this {self.source_name} {kind} into {self.target_name} (one word or short phrase): {text}"
        else:
            user = text
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    # --- 2. One request with retries ---------------------------------------------------------------
    def _ask(self, messages: list[dict[str, str]]) -> str | None:
        body = json.dumps({"model": self.model, "messages": messages, "temperature": 0,
                           "max_tokens": self.max_tokens}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    reply = json.loads(resp.read().decode("utf-8"))
                content = reply["choices"][0]["message"]["content"]
                text = (content or "").strip().strip('"“”«»').strip()
                return text or None
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read()[:300].decode('utf-8', 'replace')}"
                if exc.code not in (408, 409, 429) and exc.code < 500:
                    hint = f" (is ${self.api_key_env} set?)" if exc.code in (401, 403) else ""
                    raise LangshiftError(f"llm translator: {self.url} refused the request: {last}{hint}") from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            except (KeyError, IndexError, TypeError, json.JSONDecodeError) as exc:
                last = f"malformed reply ({type(exc).__name__}: {exc})"
        raise LangshiftError(f"llm translator: {self.url} failed {self.retries + 1} times; last error: {last}. "
                             "Check that the server runs and serves model " + repr(self.model))

    def _many(self, prompts: list[list[dict[str, str]]]) -> list[str | None]:
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(tqdm(pool.map(self._ask, prompts), total=len(prompts), desc="llm translate",
                             disable=len(prompts) < 20))

    def translate_sentences(self, sentences: list[str]) -> list[str | None]:
        return self._many([self._messages(s, None, False) for s in sentences])

    def translate_words(self, words: list[str], tags: list[str] | None = None) -> list[str | None]:
        found = self._many([self._messages(w, t, True) for w, t in zip(words, tags or [None] * len(words), strict=True)])
        return [match_case(w, t) if t else None for w, t in zip(words, found, strict=True)]
