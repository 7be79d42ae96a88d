"""Mimic: train the new embedding rows so the model reads target text as the original model did.

After a vocabulary transfer the body is the original's, but its new rows are only estimates (SALT, FOCUS, …):
the model reads target text through them worse than the original read the same text with its own tokenizer.
This stage trains those rows alone (body, old rows and, when untied, the head's old rows frozen) on the
character positions where both tokenizations end a token, on what ``--objective`` names:

  states      the transferred model's hidden states match the original's there, layer by layer:
              ‖h_student − h_teacher‖² / ‖h_teacher‖² (a relative error, so that layers and positions of
              different scale count alike), averaged over positions and layers;
  likelihood  the log-probability each model gives the text between two such positions match:
              (log p_student(span) − log p_teacher(span))², averaged over spans; this is what a log-likelihood
              benchmark reads (an answer's log-probability is a sum of spans), in the spirit of approximate
              likelihood matching (Minixhofer et al., 2025);
  both        their sum.

plus (``--lm-weight``) the usual next-token loss on the model's own tokens. No library does this
cross-tokenizer matching, hence the hand-written losses.

The teacher's body is the model's own (a transfer changes only the vocabulary matrices and the body is frozen
here), so the teacher is not loaded: only its vocabulary matrices (input embeddings; the LM head too when
untied) are read from its checkpoint, and the teacher's states are the model's body run on those rows
without gradients. Memory: one model plus those matrices, and for ``likelihood`` both models' logits of a
batch. A subset of rows (``--rows new`` or a file) trains through peft's TrainableTokens, a delta for those
rows alone (peft keeps it in fp32), so gradients and AdamW state are the trained rows' size, not the whole
matrix's: on a 128k × 8192 bf16 matrix with 16k new rows, 1 GiB of moments instead of 4 GiB
(bench/mimic_memory.py measures it); the deltas are merged into the matrices before saving. ``--rows all``
trains the matrices themselves.
Built on ``transformers.Trainer`` (checkpoints, resume, accumulation, accelerate).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from ..config import check_range, opt
from ..errors import ConfigError
from .config import TrainingConfig, TrainResult, run_training
from .lapt import read_row_ids, unwrap
from .mimic_data import collate_mimic, mimic_examples
from .mimic_loss import likelihood_loss, next_token_loss, state_loss, token_logprobs
from .modules import embedding_parameter_names, set_trainable, vocab_modules
from .runtime import prepare_out, refused_start_leaves_no_work, run_trainer, save_final, training_arguments


@dataclass(kw_only=True)
class MimicConfig(TrainingConfig):
    INPUTS: ClassVar[tuple[str, ...]] = ("model", "teacher", "text", "rows")

    model: str = opt(help="transferred model whose new rows train (`langshift transfer` output)")
    teacher: str = opt(help="the model --model was transferred from (same body), read with its own tokenizer: "
                            "built-in name, folder or hub id; only its vocabulary matrices are read")
    text: str = opt(help="target-language text: a text file (one document a line) or JSONL with a 'text' field")
    rows: str = opt("new", "rows that train: 'new' (tokens the teacher's vocabulary lacks), 'all', or a JSON "
                           "file with a list of ids (or an object with 'new_ids')")
    objective: Literal["states", "likelihood", "both"] = opt("states", "what is matched: hidden states, span "
                                                                       "log-probabilities, or both (summed)")
    layers: str = opt("all", "layers whose states are matched (states, both): 'all' or comma-separated layer "
                             "numbers (1 = the first block's output, -1 = the last)")
    lm_weight: float = opt(0.1, "weight of the next-token loss on the model's own tokens (0: none); on SmolLM2 its "
                                "gradient starts ~20× the state loss's, so 0.1 leaves the states leading")
    seq_len: int = opt(256, "model tokens per block (lines are joined until a block is full)")
    batch_size: int = opt(4, "blocks per device per step")
    lr: float = opt(1e-3, "peak learning rate (AdamW, on the trained rows only; the demo LAPT's)")
    warmup: float = opt(0.05, "warm-up: a share of the steps (<1) or a number of steps")
    max_steps: int | None = opt(128, "stop after this many optimizer steps")

    def validate(self) -> None:
        super().validate()
        if self.seq_len < 2:
            raise ConfigError("--seq-len", self.seq_len, "must be at least 2")
        check_range("--lm-weight", self.lm_weight, 0.0)
        parse_layers(self.layers, None)


def parse_layers(spec: str, n_layers: int | None) -> list[int] | None:
    """'all' → None; '1,-1' → hidden-state indices (1..n_layers). ``n_layers`` None checks the syntax only."""
    if spec == "all":
        return None
    try:
        wanted = [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise ConfigError("--layers", spec, "give 'all' or comma-separated layer numbers such as 1,12,-1") from None
    if not wanted or 0 in wanted:
        raise ConfigError("--layers", spec, "give layer numbers from 1 (the first block) or negative from the end; "
                                            "0 (the embeddings) differs between tokenizers by design")
    if n_layers is None:
        return wanted
    out = sorted({w if w > 0 else n_layers + 1 + w for w in wanted})
    if out[0] < 1 or out[-1] > n_layers:
        raise ConfigError("--layers", spec, f"the model has layers 1..{n_layers} (or -1..-{n_layers})")
    return out


# 1. Which rows train ----------------------------------------------------------------------------------

def trained_rows(spec: str, student_tok, teacher_tok, vocab_rows: int) -> list[int] | None:
    """The ids whose rows train: None for all."""
    if spec == "new":
        from ..vocab.overlap import compute_overlap

        ids = compute_overlap(teacher_tok, student_tok).new_ids
        if not ids:
            raise ConfigError("--rows", spec, "the model's tokenizer has no token the teacher's lacks; give "
                                              "'all' or a list of ids")
        return ids
    ids = read_row_ids(spec, vocab_rows)
    if ids == []:
        raise ConfigError("--rows", spec, "trains nothing; give 'new', 'all' or a JSON list of ids")
    return ids


def freeze_but_rows(model, rows: list[int] | None):
    """Only the embedding matrices train, and of them only ``rows``. Returns the model to train and its trained
    parameter count: for a subset, ``model`` wrapped by peft TrainableTokens (a delta for those rows; a tied
    head shares it, an untied head gets its own), so the old rows stay exactly as they were."""
    from peft import TrainableTokensConfig, get_peft_model

    if rows is None:
        return model, set_trainable(model, embedding_parameter_names(model))
    names = vocab_modules(model)[0]
    # peft warns on any tied model, but TrainableTokens ties a tied head's adapter to the embedding's itself
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no implementation exists to tie the adapters")
        wrapped = get_peft_model(model, TrainableTokensConfig(target_modules=names, token_indices=rows))
    return wrapped, sum(p.numel() for p in wrapped.parameters() if p.requires_grad)


# 2. Training ------------------------------------------------------------------------------------------

def teacher_matrices(name: str):
    """The input-embedding matrix and LM head of model ``name`` (the same tensor when tied), alone: read from
    its safetensors without the rest, or (a .bin checkpoint) taken from the loaded model."""
    from ..models import load_model, model_path, read_checkpoint, vocab_keys
    from ..transfer.shards import read_rows, tensor_shape

    folder = model_path(name, "--teacher")
    ckpt = read_checkpoint(folder, "--teacher") if Path(folder).is_dir() else None
    if ckpt is None:
        model = load_model(name, "--teacher")
        embed = model.get_input_embeddings().weight.detach()
        head = model.get_output_embeddings()
        return embed, embed if head is None or head.weight is model.get_input_embeddings().weight else \
            head.weight.detach()
    keys = vocab_keys(folder, ckpt, "--teacher")
    embed = read_rows(ckpt, keys.embed, tensor_shape(ckpt, keys.embed)[0])
    return embed, embed if keys.tied else read_rows(ckpt, keys.head, tensor_shape(ckpt, keys.head)[0])


def teacher_states(model, embeddings, ids, mask):
    """The teacher's hidden states (one per layer, the embeddings' first) and its final normed state: the
    model's own embedding module run with the teacher's matrix (so any scaling it applies is applied alike),
    then its body in eval mode (no dropout); no gradients."""
    import torch
    from torch.func import functional_call

    training = model.training
    try:
        with torch.no_grad():
            model.eval()
            plain = model.get_base_model() if hasattr(model, "get_base_model") else model  # under peft
            module = plain.get_input_embeddings()
            module = module.get_base_layer() if hasattr(module, "get_base_layer") else module  # not the delta
            weight = embeddings.to(module.weight.device, module.weight.dtype)
            embeds = functional_call(module, {"weight": weight}, (ids,))
            out = plain.base_model(inputs_embeds=embeds, attention_mask=mask, output_hidden_states=True)
            return out.hidden_states, out.last_hidden_state
    finally:
        model.train(training)


def make_mimic_trainer(model, teacher, args, dataset, collate, cfg: MimicConfig, layers: list[int] | None):
    """``teacher``: its (input matrix, LM head)."""
    from transformers import Trainer

    match_states, match_likelihood = cfg.objective in ("states", "both"), cfg.objective in ("likelihood", "both")

    class MimicTrainer(Trainer):
        loss_is_scaled_for_ga = False  # compute_loss returns this micro-batch's mean: the Trainer divides
        _teacher = teacher

        def teacher_on(self, like):
            """The teacher's matrices on ``like``'s device and dtype, moved once (not every step); a tied
            pair stays one tensor."""
            embeddings, head = self._teacher
            if (embeddings.device, embeddings.dtype) != (like.device, like.dtype):
                moved = embeddings.to(like.device, like.dtype)
                self._teacher = moved, moved if head is embeddings else head.to(like.device, like.dtype)
            return self._teacher

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            t_ids, t_mask = inputs.pop("teacher_ids"), inputs.pop("teacher_mask")
            s_pos, t_pos = inputs.pop("student_pos"), inputs.pop("teacher_pos")
            plain = self.accelerator.unwrap_model(model)
            embeddings, head = self.teacher_on(plain.get_input_embeddings().weight)
            t_states, t_last = teacher_states(plain, embeddings, t_ids, t_mask)
            out = model(**inputs, output_hidden_states=match_states)  # no labels: every loss comes from s_lp
            s_lp = token_logprobs(out.logits, inputs["input_ids"], inputs["attention_mask"])
            parts = {"lm_loss": next_token_loss(s_lp, inputs["attention_mask"])}
            if match_states:
                picked = layers or range(1, len(out.hidden_states))
                parts["state_loss"] = state_loss([out.hidden_states[i] for i in picked],
                                                 [t_states[i] for i in picked], s_pos, t_pos)
            if match_likelihood:
                t_logits = t_last @ head.T
                parts["likelihood_loss"] = likelihood_loss(s_lp, token_logprobs(t_logits, t_ids, t_mask), s_pos,
                                                           t_pos)
            loss = sum(v for k, v in parts.items() if k != "lm_loss")
            if cfg.lm_weight:
                loss = loss + cfg.lm_weight * parts["lm_loss"]
            if model.training:
                self._last = {k: v.item() for k, v in parts.items()}
            return (loss, out) if return_outputs else loss

        def log(self, logs, *a, **kw):
            if "loss" in logs and getattr(self, "_last", None):
                logs.update(self._last)
            super().log(logs, *a, **kw)

    return MimicTrainer(model=model, args=args, train_dataset=dataset, data_collator=collate)


def train_mimic(cfg: MimicConfig, model=None, tokenizer=None, teacher=None, teacher_tokenizer=None) -> Path:
    """``teacher``/``teacher_tokenizer``: the teacher's (input matrix, LM head) and tokenizer, when already in
    memory."""
    from datasets import Dataset

    from ..engine import our_generator_errors
    from ..models import load_model, load_tokenizer

    out = Path(cfg.out)
    work = prepare_out(out, cfg.overwrite)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.model, "--model")
    teacher_tok = teacher_tokenizer if teacher_tokenizer is not None else load_tokenizer(cfg.teacher, "--teacher")
    for name, tok in (("--model", tokenizer), ("--teacher", teacher_tok)):
        if not getattr(tok, "is_fast", False):
            raise ConfigError(name, getattr(tok, "name_or_path", "?"), "needs a fast tokenizer (character "
                                                                       "offsets); save it with `tokenizers`")
    model = model if model is not None else load_model(cfg.model)
    teacher = teacher if teacher is not None else teacher_matrices(cfg.teacher)
    width = model.get_input_embeddings().weight.shape[1]
    for matrix in teacher:
        if matrix.shape[1] != width or matrix.shape[0] < len(teacher_tok):
            raise ConfigError("--teacher", cfg.teacher, f"has {matrix.shape[0]} vocabulary rows of width "
                                                        f"{matrix.shape[1]} for {len(teacher_tok)} tokens, the "
                                                        f"model's are {width} wide: give the model --model was "
                                                        "transferred from")
    n_layers = model.config.num_hidden_layers
    layers = parse_layers(cfg.layers, n_layers)
    rows = trained_rows(cfg.rows, tokenizer, teacher_tok, model.get_input_embeddings().weight.shape[0])
    check_text(cfg.text)
    stat = os.stat(cfg.text)
    with refused_start_leaves_no_work(work):  # examples cached in the work folder, keyed on the file's stamp
        with our_generator_errors():  # an empty file: the reader's own error, not datasets' wrapper
            dataset = Dataset.from_generator(mimic_examples, cache_dir=str(work / "data"), gen_kwargs={
                "path": cfg.text, "student_tok": tokenizer, "teacher_tok": teacher_tok, "seq_len": cfg.seq_len,
                "stamp": (stat.st_size, stat.st_mtime_ns)})
        if len(dataset) == 0:
            raise ConfigError("--text", cfg.text, "gives no text both tokenizers can be matched on")
    model, trainable = freeze_but_rows(model, rows)  # after every check: a refused start leaves the model as given
    s_pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    t_pad = teacher_tok.pad_token_id if teacher_tok.pad_token_id is not None else 0
    args = training_arguments(work, **cfg.schedule(), scheduler="linear")
    trainer = make_mimic_trainer(model, teacher, args, dataset, lambda exs: collate_mimic(exs, s_pad, t_pad),
                                 cfg, layers)
    summary = run_trainer(trainer, work)
    if not trainer.is_world_process_zero():
        return out
    summary.update({"stage": "mimic", "config": cfg.to_dict(), "blocks": len(dataset),
                    "trained_rows": "all" if rows is None else len(rows), "trainable_parameters": trainable,
                    "layers": layers or list(range(1, n_layers + 1))})
    return save_final(unwrap(trainer.model).eval(), tokenizer, out, work, cfg.overwrite, summary,
                      cfg.keep_work)


def check_text(path: str) -> None:
    if not Path(path).is_file():
        raise ConfigError("--text", path, "no such file; give a UTF-8 text, .jsonl or .parquet file")


def run_mimic(cfg: MimicConfig) -> TrainResult:
    """The front door: a missing --text fails before any model loads."""
    return run_training(cfg, train_mimic, lambda: check_text(cfg.text))
