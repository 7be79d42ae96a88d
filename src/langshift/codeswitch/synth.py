"""SynCS §4.1 step 3: token-level code-switching of any corpus by the distilled student.

Like ``codeswitch syncs``: documents are split into sentences, a ``density`` share of them is chosen
(``provenance.Quota``) and each chosen one gets a kind (token-repl/token-annt, dealt by ``TypeCycle``);
the student writes the code-switched sentence from the App. C.1 prompt with the source side only.
An output is used only if it aligns with its sentence (``teach.align``: other words kept in order,
token-level share); then the record is the original with the aligned spans spliced in, so everything
outside them stays byte-identical and each edit has its offsets. Same JSONL and summary as ``syncs``.

Generation: transformers ``generate`` in batches (left padding, greedy unless a temperature is given),
prompts sorted by length; vLLM as an optional backend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from tqdm.auto import tqdm

from ..config import StageConfig, check_range, opt
from ..errors import ConfigError
from ..files import atomic_write_json
from .provenance import (
    Quota,
    Record,
    SwitchFiles,
    TokenCounter,
    annotate,
    batched,
    check_share,
    splice,
    split_documents,
)
from .syncs import Stats, SyncsResult, TypeCycle, summary
from .teach import KINDS, prompt
from .teach_filter import align

log = logging.getLogger(__name__)
VLLM_INSTALL = "pip install vllm"


# 1. Generation ----------------------------------------------------------------------------------------

def _chat(tokenizer, text: str) -> str:
    from ..train.data import chat_prompt

    return chat_prompt(tokenizer, text)


def generate(model, tokenizer, prompts: Sequence[str], batch_size: int = 16, max_new_tokens: int = 160,
             temperature: float = 0.0, desc: str = "generate") -> tuple[list[str], int]:
    """The model's reply to each user prompt (chat template), and the number of tokens generated.

    Batches of similar length, left-padded; each batch stops at ``max_new_tokens`` or at 2× its longest
    prompt's source tokens + 16 (a code-switched sentence is not much longer than its source)."""
    import torch

    if not prompts:
        return [], 0
    texts = [_chat(tokenizer, p) for p in prompts]
    enc = tokenizer(texts, add_special_tokens=False)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: len(enc[i]))
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = tokenizer.convert_tokens_to_ids(["<|im_end|>"])[0] if "<|im_end|>" in tokenizer.get_vocab() else None
    stop = [i for i in {tokenizer.eos_token_id, eos} if i is not None]
    out: list[str] = [""] * len(texts)
    generated = 0
    device = next(model.parameters()).device
    bar = tqdm(total=len(texts), desc=desc, unit="sent")
    try:
        for idx in batched(order, batch_size):
            width = max(len(enc[i]) for i in idx)
            batch = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros_like(batch)
            for row, i in enumerate(idx):
                batch[row, width - len(enc[i]):] = torch.tensor(enc[i])
                mask[row, width - len(enc[i]):] = 1
            longest = max(len(tokenizer(prompts[i], add_special_tokens=False)["input_ids"]) for i in idx)
            limit = min(max_new_tokens, 2 * longest + 16)
            sample = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
            with torch.no_grad():
                seq = model.generate(input_ids=batch.to(device), attention_mask=mask.to(device),
                                     max_new_tokens=limit, pad_token_id=pad, eos_token_id=stop or None,
                                     top_p=None, top_k=None, **sample)
            new = seq[:, width:].cpu()
            for row, i in enumerate(idx):
                ids = new[row].tolist()
                cut = next((k for k, t in enumerate(ids) if t in stop), len(ids))
                generated += cut + (cut < len(ids))
                out[i] = tokenizer.decode(ids[:cut], skip_special_tokens=True)
            bar.update(len(idx))
    finally:
        bar.close()
        tokenizer.padding_side = side
    return out, generated


def generate_vllm(model_path: str, tokenizer, prompts: Sequence[str], max_new_tokens: int,
                  temperature: float) -> tuple[list[str], int]:
    """The same with vLLM (optional; ``pip install vllm``)."""
    from ..optional import require

    vllm = require("vllm", VLLM_INSTALL, "backend=vllm")
    llm = vllm.LLM(model=model_path)
    params = vllm.SamplingParams(temperature=temperature, max_tokens=max_new_tokens)
    res = llm.generate([_chat(tokenizer, p) for p in prompts], params)
    return [r.outputs[0].text for r in res], sum(len(r.outputs[0].token_ids) for r in res)


# 2. The stage -----------------------------------------------------------------------------------------

@dataclass
class SynthOptions(StageConfig):
    """What the student's stream takes (``synth()``: documents in memory)."""

    model: str = opt(help="the distilled student (model folder from `codeswitch distill`)")
    source_lang: str = opt("en", "language of the text")
    target_lang: str = opt("es", "language of the switched-in words")
    density: float = opt(0.2, "share of sentences code-switched")
    magnitude: int | None = opt(None, "budget of new tokens (switched-in text); default: no budget")
    mix: Literal["token-equal", "extreme"] = opt("extreme", "token-equal: token-repl and token-annt in turn; "
                                                            "extreme: --type only")
    type: Literal["token-repl", "token-annt"] = opt("token-repl", "the kind used by mix=extreme")
    backend: Literal["hf", "vllm"] = opt("hf", "hf: transformers generate; vllm: needs `pip install vllm`")
    batch_size: int = opt(16, "sentences per generation batch")
    max_new_tokens: int = opt(160, "longest output per sentence in tokens")
    temperature: float = opt(0.0, "0: greedy (the paper's setting); > 0: sampling")
    max_switch_share: float = opt(0.5, "outputs switching more of the words than this are not used")
    tokenizer: str | None = opt(None, "count new tokens with this tokenizer; default: whitespace words")
    chunk: int = opt(512, "sentences read and written per step (bounds memory on large corpora)")
    seed: int = opt(0, "seed for choosing sentences and kinds")

    def validate(self) -> None:
        super().validate()
        check_share("density", self.density)
        check_share("max_switch_share", self.max_switch_share)
        for name in ("batch_size", "max_new_tokens", "chunk"):
            check_range("--" + name.replace("_", "-"), getattr(self, name), 1)
        check_range("--temperature", self.temperature, 0.0)
        if self.magnitude is not None:
            check_range("--magnitude", self.magnitude, 1)
        if self.backend == "vllm":
            from ..optional import require

            require("vllm", VLLM_INSTALL, "--backend vllm")

    def types(self) -> list[str]:
        return list(KINDS) if self.mix == "token-equal" else [self.type]


@dataclass
class SynthConfig(SynthOptions, SwitchFiles):
    """``codeswitch synth``: the student's options with the files in and out."""

    INPUTS: ClassVar[tuple[str, ...]] = ("text", "model")


@dataclass
class SynthStats(Stats):
    rejected: int = 0                 # outputs that did not align with their sentence (left unmodified)
    generated_tokens: int = 0
    generation_seconds: float = 0.0


@dataclass
class SynthResult(SynthStats, SyncsResult):
    """SynCS's result with the student's counts; ``tokens_per_second`` is the generation rate."""

    model: str = ""
    backend: str = "hf"
    tokens_per_second: float | None = None


def apply(rec: Record, kind: str, output: str, max_share: float) -> str | None:
    """Splice the student's aligned spans into ``rec``; the reason when the output is not usable."""
    a = align(rec.original, output, kind)
    if a.reason is None and a.switched_share > max_share:
        a.reason = f"switched {a.switched_share:.0%} of the words"
    if a.reason is not None:
        return a.reason
    edits = a.edits()
    fmt = (lambda e: e.translation) if kind == "token-repl" else (lambda e: annotate(e.source, e.translation))
    rec.text = splice(rec.original, [(e.start, e.end, fmt(e)) for e in edits])
    rec.replacements, rec.type = edits, kind
    return None


class Student:
    def __init__(self, cfg: SynthOptions, model=None, tokenizer=None):
        from ..models import load_model, load_tokenizer

        self.cfg = cfg
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.model, "--model")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = None if cfg.backend == "vllm" else (model if model is not None else
                                                         load_model(cfg.model, "--model").eval())

    def write(self, sentences: Sequence[str], kinds: Sequence[str]) -> tuple[list[str], int]:
        c = self.cfg
        prompts = [prompt(k, s, c.source_lang, c.target_lang) for s, k in zip(sentences, kinds, strict=True)]
        if c.backend == "vllm":
            return generate_vllm(c.model, self.tokenizer, prompts, c.max_new_tokens, c.temperature)
        return generate(self.model, self.tokenizer, prompts, c.batch_size, c.max_new_tokens, c.temperature,
                        desc="code-switching (student)")


def synth(documents: Iterable[str], cfg: SynthOptions, student: Student | None = None,
          counter: TokenCounter | None = None, stats: SynthStats | None = None) -> Iterator[Record]:
    """Every sentence of ``documents`` as a record, a ``density`` share of them code-switched by the student."""
    student = student or Student(cfg)
    counter = counter or TokenCounter(cfg.tokenizer)
    st = stats if stats is not None else SynthStats()
    quota, cycle, docs, start = Quota(cfg.density, cfg.seed), TypeCycle(cfg.types(), cfg.seed), set(), time.perf_counter()
    try:
        for chunk in batched(split_documents(documents, cfg.source_lang), cfg.chunk):
            chosen = [] if st.budget_reached else [chunk[i] for i in quota.pick(len(chunk), chunk[0].id)]
            kinds = [cycle.next() for _ in chosen]
            t0 = time.perf_counter()
            outputs, n = student.write([r.original for r in chosen], kinds) if chosen else ([], 0)
            st.generation_seconds += time.perf_counter() - t0
            st.generated_tokens += n
            for rec, kind, output in zip(chosen, kinds, outputs, strict=True):
                if st.budget_reached:
                    break
                if apply(rec, kind, output, cfg.max_switch_share) is not None:
                    st.rejected += 1
                    continue
                new = sum(counter.counts([e.translation for e in rec.replacements]))
                if cfg.magnitude is not None and st.new_tokens + new > cfg.magnitude:
                    rec.text, rec.replacements, rec.type = rec.original, [], None
                    st.budget_reached = True
                    break
                rec.new_tokens = new
                st.modified += 1
                st.per_type[kind] += 1
                st.new_tokens += new
                st.words_switched += len(rec.replacements)
            for rec in chunk:
                st.sentences += 1
                docs.add(rec.doc)
                yield rec
    finally:
        st.documents = len(docs)
        st.seconds = time.perf_counter() - start


def run_synth(cfg: SynthConfig) -> SynthResult:
    """The student over ``cfg.text``: provenance to ``cfg.out``, the documents to ``cfg.text_out`` if set, the
    summary to OUT.summary.json (the outputs of ``codeswitch syncs``)."""
    from ..text.langid import check_languages
    from .provenance import read_documents, write_outputs

    cfg.check_outputs()
    check_languages({"source_lang": cfg.source_lang, "target_lang": cfg.target_lang})
    docs = read_documents(cfg.text, cfg.on_bad)
    if not docs:
        raise ConfigError("--text", cfg.text, "holds no non-blank line; give one document a line")
    counter, stats = TokenCounter(cfg.tokenizer), SynthStats()
    write_outputs(synth(docs, cfg, Student(cfg), counter, stats), cfg.out, cfg.text_out, cfg.overwrite)
    result = summary(stats, cfg, counter)
    result.update(model=cfg.model, backend=cfg.backend,
                  tokens_per_second=round(stats.generated_tokens / stats.generation_seconds, 2)
                  if stats.generation_seconds else None)
    atomic_write_json(f"{cfg.out}.summary.json", result)
    log.info("student SynCS: %d of %d sentences modified %s, %d rejected, %.1f tokens/s", stats.modified,
             stats.sentences, stats.per_type, stats.rejected, result["tokens_per_second"] or 0.0)
    return SynthResult(out=str(cfg.out), text_out=cfg.text_out, **result)


__all__ = ["SynthConfig", "SynthOptions", "SynthResult", "SynthStats", "Student", "apply", "generate", "run_synth", "synth"]
