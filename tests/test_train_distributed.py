"""Multi-process training, run for real on 2 CPU processes (gloo): LAPT and CLO under `accelerate launch`
(DDP) equal the 1-process run with the same global batch; FSDP2's final save writes full, reloadable
weights; every shipped accelerate config is accepted by accelerate and agrees with our Trainer settings;
gradient checkpointing changes neither loss nor gradients.

Tolerances: the 2-process runs add the two half-batch gradients in another order than one process sums
the full batch (float32 rounding, ~1e-7 relative); a few AdamW steps at lr 1e-3 carry that into the
weights at ~1e-7 (measured max 1.1e-7 on full LAPT), while the training moves the weights by ~1e-3. So
atol 1e-5 fails on any real difference (a wrong batch, a lost gradient, a rank's data used twice: all
≥1e-4) and passes on rounding.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import helpers
import langshift

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs" / "accelerate").glob("*.yaml"))
ATOL = 1e-5


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    tok = helpers.byte_level_bpe(helpers.EN_TEXT * 3 + helpers.ES_TEXT, vocab_size=320)
    model = helpers.tiny_llama(len(tok), bos_id=tok.bos_token_id, eos_id=tok.eos_token_id)
    helpers.save_model_folder(model, tok, root / "model")
    helpers.write_lines(root / "es.txt", helpers.ES_TEXT * 5)
    # CLO pairs whose target answers have different numbers of tokens: the NLL is a token mean over the
    # global batch only if the token count is summed across processes (train/clo.py does).
    records = [{"id": i, "x_en": helpers.EN_TEXT[i], "y_en": helpers.EN_TEXT[i + 4],
                "x_t": helpers.ES_TEXT[i], "y_t": helpers.ES_TEXT[i + 4]} for i in range(4)]
    (root / "clo.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return root


def run_processes(cmd: list[str], timeout: float = 240) -> None:
    """Run a launcher in its own process group; on a timeout kill the whole group (the launcher and
    its training processes), so that a hung collective leaves nothing running."""
    src = str(Path(langshift.__file__).resolve().parents[1])
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{cmd[2]} ran past {timeout}s: {err[-3000:]}")
    assert proc.returncode == 0, out[-2000:] + err[-4000:]


def accelerate_launch(stage: str, cfg: dict, where: Path, config: Path, processes: int = 2) -> float:
    """``accelerate launch`` of the pipeline's entry point on CPU processes; returns its wall time."""
    where.mkdir(parents=True, exist_ok=True)
    cfg_path = where / f"{stage}.launch.json"
    cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
           "--num_processes", str(processes), "--mixed_precision", "no", "--main_process_port", "0",
           "-m", "langshift.pipeline.launch", stage, str(cfg_path)]
    start = time.perf_counter()
    run_processes(cmd)
    return time.perf_counter() - start


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def step_losses(folder: Path) -> list[float]:
    from langshift.train.runtime import read_log

    return [line["loss"] for line in read_log(folder) if "loss" in line]


def check_one_complete_output(out: Path) -> None:
    """Only rank 0 wrote, and completely: the model folder, nothing half-made or left beside it."""
    assert sorted(p.name for p in out.parent.iterdir() if not p.name.endswith(".launch.json")) == [out.name]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "train_summary.json", "train_log.jsonl"):
        assert (out / name).is_file(), name


def test_lapt_ddp_two_processes_equals_one_process(tiny, tmp_path):
    """LAPT (LoRA + trainable embeddings, merged at the end) on 2 processes with 2 blocks each equals
    1 process with 4 blocks: same weights, same logged losses, one complete output written by rank 0."""
    from langshift.train.lapt import LAPTConfig, train_lapt

    base = {"model": str(tiny / "model"), "text": str(tiny / "es.txt"), "mode": "lora", "lora_r": 4,
            "lora_dropout": 0.0, "seq_len": 16, "grad_accum": 1, "max_steps": 3, "lr": 1e-3, "warmup": 0,
            "save_steps": 100, "seed": 0}
    one = train_lapt(LAPTConfig.from_dict({**base, "batch_size": 4, "out": str(tmp_path / "one" / "model")}))
    two = tmp_path / "two" / "model"
    seconds = accelerate_launch("lapt", {**base, "batch_size": 2, "out": str(two)}, two.parent,
                                ROOT / "configs" / "accelerate" / "ddp.yaml")
    check_one_complete_output(two)
    summary = json.loads((two / "train_summary.json").read_text())
    assert summary["global_step"] == 3
    diff, moved = max_diff(weights(one), weights(two)), max_diff(weights(one), weights(tiny / "model"))
    print(f"LAPT DDP 2 procs: max |Δw| vs 1 proc {diff:.2e}, moved by training {moved:.2e}, launch {seconds:.0f}s")
    assert moved > 1e-3
    assert diff < ATOL
    assert step_losses(two) == pytest.approx(step_losses(one), rel=1e-5)
    assert len(step_losses(two)) == 3  # logged once (rank 0), not once per process


def test_clo_ddp_two_processes_equals_one_process(tiny, tmp_path):
    """CLO (attention projections) on 2 processes with 1 pair each equals 1 process with 2 pairs."""
    from langshift.models import load_tokenizer
    from langshift.train.clo import CLOConfig, train_clo
    from langshift.train.clo_batches import encode_pairs
    from langshift.train.clo_loss import T_CHOSEN
    from langshift.train.data import read_jsonl

    tok = load_tokenizer(str(tiny / "model"))
    examples = encode_pairs(tok, read_jsonl(tiny / "clo.jsonl", ["id", "x_en", "y_en", "x_t", "y_t"]), 128)
    target_tokens = [len(ex["rows"][T_CHOSEN][0]) - ex["rows"][T_CHOSEN][1] for ex in examples[:2]]
    assert target_tokens[0] != target_tokens[1], "each process must hold a different number of target tokens"
    base = {"model": str(tiny / "model"), "data": str(tiny / "clo.jsonl"), "max_len": 128, "max_steps": 2,
            "lr": 1e-3, "warmup": 0, "ref_batch_size": 4, "save_steps": 100, "seed": 0}
    one = train_clo(CLOConfig.from_dict({**base, "batch_size": 2, "out": str(tmp_path / "one" / "model")}))
    two = tmp_path / "two" / "model"
    seconds = accelerate_launch("clo", {**base, "batch_size": 1, "out": str(two)}, two.parent,
                                ROOT / "configs" / "accelerate" / "ddp.yaml")
    check_one_complete_output(two)
    diff, moved = max_diff(weights(one), weights(two)), max_diff(weights(one), weights(tiny / "model"))
    print(f"CLO DDP 2 procs: max |Δw| vs 1 proc {diff:.2e}, moved by training {moved:.2e}, launch {seconds:.0f}s")
    assert moved > 1e-3
    assert diff < ATOL
    assert step_losses(two) == pytest.approx(step_losses(one), rel=1e-5)


def test_fsdp2_final_save_writes_full_reloadable_weights(tiny, tmp_path):
    """FSDP2 (torch ``fully_shard``, per decoder layer) on 2 CPU processes, 3 AdamW steps on half
    batches; the final save (``gather_full_state_dict`` on every rank, ``save_final`` on rank 0) reloads
    with transformers, complete, and equals 1 process training on the whole batches."""
    import torch
    from transformers import AutoModelForCausalLM

    steps, lr = 3, 1e-3
    vocab = AutoModelForCausalLM.from_pretrained(tiny / "model").config.vocab_size
    batches = torch.randint(0, vocab, (steps, 4, 16), generator=torch.Generator().manual_seed(0))
    (tmp_path / "batches.json").write_text(json.dumps(batches.tolist()))
    out = tmp_path / "fsdp" / "model"
    start = time.perf_counter()
    run_processes([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                   str(Path(__file__).with_name("fsdp2_worker.py")), str(tiny / "model"),
                   str(tmp_path / "batches.json"), str(out), str(steps), str(lr)])
    seconds = time.perf_counter() - start

    reference = AutoModelForCausalLM.from_pretrained(tiny / "model").train()
    optimizer = torch.optim.AdamW(reference.parameters(), lr=lr, weight_decay=0.0)
    for step in range(steps):
        reference(input_ids=batches[step], labels=batches[step]).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    saved, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    got, want = saved.state_dict(), reference.state_dict()
    assert all(got[k].shape == want[k].shape and got[k].dtype == torch.float32 for k in want)
    diff = max_diff(got, want)
    moved = max_diff(want, AutoModelForCausalLM.from_pretrained(tiny / "model").state_dict())
    print(f"FSDP2 2 procs: max |Δw| of the saved model vs 1 proc {diff:.2e}, moved by training {moved:.2e}, launch {seconds:.0f}s")
    assert moved > 1e-3
    assert diff < ATOL
    assert sorted(p.name for p in out.parent.iterdir()) == ["model"]  # work folder dropped, no temp left


def test_fsdp_config_on_cpu_processes_fails_before_training(tiny, tmp_path, monkeypatch):
    """accelerate silently runs plain DDP when an FSDP config is launched on CPU processes; our runtime
    says so instead of training unsharded."""
    from transformers import AutoModelForCausalLM, Trainer

    from langshift.errors import LangshiftError
    from langshift.train.runtime import run_trainer, training_arguments

    args = training_arguments(tmp_path, batch_size=1, lr=1e-3, epochs=1, max_steps=1, warmup=0, seed=0,
                              save_steps=10)
    trainer = Trainer(model=AutoModelForCausalLM.from_pretrained(tiny / "model"), args=args,
                      train_dataset=[{"input_ids": [1, 2, 3]}])
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(LangshiftError, match="asks for FSDP"):
        run_trainer(trainer, tmp_path)
    assert not list(tmp_path.glob("checkpoint-*"))


def launch_env(config: Path) -> tuple[object, dict]:
    """What `accelerate launch --config_file CONFIG` would run with (its own argument checks and the
    environment it gives every process), computed without starting anything."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(config), "train.py"])
    args, defaults, mp_from_config = _validate_launch_command(args)
    if args.use_deepspeed:  # as accelerate's launch_command does before its deepspeed launcher
        fields = list(defaults.deepspeed_config) + (["mixed_precision"] if mp_from_config else [])
        args.deepspeed_fields_from_accelerate_config = ",".join(fields)
        return args, prepare_deepspeed_cmd_env(args)[1]
    return args, prepare_multi_gpu_env(args)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_shipped_accelerate_config_is_valid(config, tmp_path, monkeypatch):
    """Each shipped config parses with accelerate's own reader and launch checks, builds its plugin, and
    agrees with the Trainer arguments our stages pass on a bf16 GPU (batch, accumulation, clipping, bf16)."""
    import yaml
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.utils import DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin

    from langshift.train.runtime import training_arguments

    raw = yaml.safe_load(config.read_text())
    cluster = ClusterConfig.from_yaml_file(str(config))  # unknown keys fail here
    assert cluster.mixed_precision == "bf16" and cluster.num_processes == 8 and not raw.get("use_cpu")
    args, env = launch_env(config)
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    # what runtime.training_arguments gives on a bf16 GPU (forced here: this machine has none); made before
    # the launch environment is set, in which TrainingArguments would itself start DeepSpeed
    targs = training_arguments(tmp_path, batch_size=2, lr=1e-4, epochs=1, max_steps=3, warmup=0, seed=0,
                               save_steps=10, grad_accum=4, bf16=True)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    kind = DistributedType(raw["distributed_type"])
    if kind == DistributedType.MULTI_GPU:
        assert args.multi_gpu and not args.use_fsdp and not args.use_deepspeed
    elif kind == DistributedType.FSDP:
        plugin = FullyShardedDataParallelPlugin()
        assert plugin.fsdp_version == 2
        assert "FULL_STATE_DICT" in str(plugin.state_dict_type)  # what runtime.final_state_dict gathers
        assert env["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP"
        # loading on rank 0 only needs the others to receive its weights
        assert env["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "false" or env["FSDP_SYNC_MODULE_STATES"] == "true"
    elif kind == DistributedType.DEEPSPEED:
        plugin = DeepSpeedPlugin()  # builds the DeepSpeed JSON from the env; deepspeed itself not needed
        plugin.set_mixed_precision(env["ACCELERATE_MIXED_PRECISION"])
        ds = plugin.deepspeed_config
        assert ds["zero_optimization"]["stage"] == 2  # ZeRO-2: each rank keeps whole weights, no gather
        # transformers fills "auto" from the Trainer arguments and refuses any fixed value that differs
        # (HfTrainerDeepSpeedConfig.trainer_config_process); the same comparison, without deepspeed:
        expected = {("train_micro_batch_size_per_gpu",): targs.per_device_train_batch_size,
                    ("gradient_accumulation_steps",): targs.gradient_accumulation_steps,
                    ("gradient_clipping",): targs.max_grad_norm, ("bf16", "enabled"): targs.bf16,
                    ("fp16", "enabled"): targs.fp16}
        for path, want in expected.items():
            node = ds
            for key in path:
                node = node[key]
            assert node in ("auto", want), (path, node, want)
    else:
        pytest.fail(f"{config.name}: distributed_type {kind} has no check")


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tiny, tmp_path):
    """The runtime's gradient checkpointing (as the Trainer enables it from our arguments) recomputes
    activations without changing the loss or any gradient."""
    import torch
    from transformers import AutoModelForCausalLM

    from langshift.train.runtime import training_arguments

    args = training_arguments(tmp_path, batch_size=2, lr=1e-3, epochs=1, max_steps=1, warmup=0, seed=0,
                              save_steps=10, gradient_checkpointing=True)
    assert args.activation_checkpointing
    assert training_arguments(tmp_path, batch_size=2, lr=1e-3, epochs=1, max_steps=1, warmup=0, seed=0,
                              save_steps=10).activation_checkpointing is False  # CPU default: off
    ids = torch.randint(0, 300, (2, 24), generator=torch.Generator().manual_seed(1))
    results = []
    for checkpointing in (False, True):
        model = AutoModelForCausalLM.from_pretrained(tiny / "model").train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=args.activation_checkpointing_kwargs)
            assert model.is_gradient_checkpointing
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        results.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    diff = max((grads_a[n] - grads_b[n]).abs().max().item() for n in grads_a)
    print(f"gradient checkpointing: |Δloss| {abs(loss_a - loss_b):.2e}, max |Δgrad| {diff:.2e}")
    assert loss_a == pytest.approx(loss_b, abs=1e-6)
    assert diff < 1e-6
    assert max(g.abs().max().item() for g in grads_a.values()) > 1e-3


def test_lapt_options_reach_the_trainer(tiny, tmp_path):
    """--gradient-checkpointing and --bf16 of LAPT go to the Trainer (here on CPU, where bf16 autocast
    runs too): training with checkpointing gives the weights of training without it."""
    from langshift.train.lapt import LAPTConfig, train_lapt

    base = {"model": str(tiny / "model"), "text": str(tiny / "es.txt"), "mode": "full", "seq_len": 16,
            "batch_size": 2, "max_steps": 2, "lr": 1e-3, "warmup": 0, "save_steps": 100, "seed": 0}
    plain = train_lapt(LAPTConfig.from_dict({**base, "out": str(tmp_path / "plain")}))
    ckpt = train_lapt(LAPTConfig.from_dict({**base, "gradient_checkpointing": True, "out": str(tmp_path / "gc")}))
    bf16 = train_lapt(LAPTConfig.from_dict({**base, "bf16": True, "out": str(tmp_path / "bf16")}))
    assert max_diff(weights(plain), weights(ckpt)) < ATOL
    summaries = [json.loads((f / "train_summary.json").read_text())["config"] for f in (ckpt, bf16)]
    assert summaries[0]["gradient_checkpointing"] is True and summaries[1]["bf16"] is True
    # bf16 autocast really ran: its losses differ from float32 by bf16 rounding, not by more
    assert step_losses(bf16) != step_losses(plain)
    assert step_losses(bf16) == pytest.approx(step_losses(plain), rel=2e-2)
