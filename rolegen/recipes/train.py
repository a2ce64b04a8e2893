"""Recipe: dataset -> LoRA adapter (SFT, DPO on the rejected turns, or SFT then DPO).

Supports: the dataset `rolegen filter` exports (or any `messages` JSONL), rendered
with the prompt format it was generated with; assistant-only loss; packed rows
with attention boundaries; DPO against a frozen reference (the model as the stage
starts: the base, or the SFT adapter), with its log-probabilities computed once;
an optional NLL term on the chosen replies (RPO); eval-split loss; checkpoints
and `--resume`; `accelerate launch` (DDP/FSDP); a merged copy with `--merge`.

Writes to the adapter folder: adapter_model.safetensors + adapter_config.json
(PEFT, vLLM), rolegen_adapter.json (base model, format), train_config.json,
log.jsonl, loss.png, summary.json; checkpoints/ while training.

The parts: train_data.py (files -> examples -> micro-batches), lora.py (the model),
losses.py, trainer.py (the loop, checkpoints); here the two stages and the wiring.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
from tqdm import tqdm

from rolegen.adapters import META, check_checkpoint_base, merge_adapter
from rolegen.config import TrainConfig
from rolegen.lora import load_lora_model, training_dtype
from rolegen.losses import dpo_loss, pair_logps, sft_loss
from rolegen.models import inspect_model, load_tokenizer, resolve_model
from rolegen.options import to_dict
from rolegen.rendering import Example, PairExample, Renderer
from rolegen.runs import git_commit, hold_out_dir, package_versions
from rolegen.train_data import (
    collate_packed,
    encode_pair_splits,
    encode_sft_splits,
    load_train_data,
    pair_batches,
    pair_tensors,
    resolve_format,
    sft_batches,
)
from rolegen.trainer import Checkpoints, Trainer, plot_loss

_EVAL_PAIRS = 8  # pairs per forward pass when scoring without gradients


class SFTStage:
    """Assistant-only NLL on packed dialogues; eval: the test split's loss per token."""

    name = "sft"

    def __init__(self, cfg: TrainConfig, train: list[Example], test: list[Example], device):
        self.cfg, self.train, self.test, self.device = cfg, train, test, device
        self.epochs, self.lr = cfg.epochs, cfg.learning_rate

    def micro_batches(self, epoch: int) -> list:
        return sft_batches(self.train, self.cfg, epoch)

    def step(self, model, rows) -> tuple[torch.Tensor, dict]:
        batch = collate_packed([[self.train[i] for i in row] for row in rows])
        loss, n = sft_loss(model, _to(batch, self.device))
        real = sum(len(self.train[i]) for row in rows for i in row)
        width = batch["input_ids"].numel()
        return loss, {"tokens": real, "padded": width - real, "target_tokens": n}

    def evaluate(self, model) -> dict:
        if not self.test:
            return {}
        total_nll, total_n = 0.0, 0
        for rows in sft_batches(self.test, self.cfg, 0):
            batch = collate_packed([[self.test[i] for i in row] for row in rows])
            loss, n = sft_loss(model, _to(batch, self.device))
            total_nll += float(loss) * n
            total_n += n
        return {"loss": round(total_nll / max(1, total_n), 5)}


class DPOStage:
    """DPO on (chosen, rejected) pairs against reference log-probabilities `ref`
    ({"train"/"test": (chosen, rejected)}, from `_reference_logps`), plus the RPO term
    when `--dpo-sft-weight` is set; eval: loss, reward accuracy and margin."""

    name = "dpo"

    def __init__(
        self, cfg: TrainConfig, train: list[PairExample], test: list[PairExample], ref: dict, device
    ):
        self.cfg, self.train, self.test, self.ref, self.device = cfg, train, test, ref, device
        self.epochs, self.lr = cfg.dpo_epochs, cfg.dpo_learning_rate

    def micro_batches(self, epoch: int) -> list:
        return pair_batches(self.train, self.cfg, epoch)

    def step(self, model, idxs) -> tuple[torch.Tensor, dict]:
        pairs = [self.train[i] for i in idxs]
        batch = pair_tensors(pairs)
        chosen, rejected, n_chosen, nll = pair_logps(model, _to(batch, self.device), len(pairs))
        tokens = sum(len(p.chosen) + len(p.rejected) for p in pairs)
        ref_c, ref_r = self.ref["train"][0][idxs].to(chosen), self.ref["train"][1][idxs].to(chosen)
        loss, margin = dpo_loss(chosen, rejected, ref_c, ref_r, self.cfg.beta)
        if self.cfg.dpo_sft_weight:
            loss = loss + self.cfg.dpo_sft_weight * nll
        return loss, {
            "tokens": tokens,
            "padded": batch["input_ids"].numel() - tokens,
            "target_tokens": n_chosen,
            "reward_accuracy": round(float((margin > 0).float().mean()), 4),
            "margin": round(float(margin.mean()), 4),
        }

    def evaluate(self, model) -> dict:
        if not self.test:
            return {}
        margins, losses = [], []
        ref_c, ref_r = self.ref["test"]
        for start in range(0, len(self.test), _EVAL_PAIRS):
            idxs = list(range(start, min(start + _EVAL_PAIRS, len(self.test))))
            c, r = _chosen_rejected(model, [self.test[i] for i in idxs], self.device)
            loss, m = dpo_loss(c, r, ref_c[idxs].to(c), ref_r[idxs].to(c), self.cfg.beta)
            margins.append(m)
            losses.append(float(loss) * len(idxs))
        m = torch.cat(margins)
        return {
            "loss": round(sum(losses) / len(self.test), 5),
            "reward_accuracy": round(float((m > 0).float().mean()), 4),
            "margin": round(float(m.mean()), 4),
        }


@torch.no_grad()
def _reference_logps(
    model, pairs: list[PairExample], device, bar
) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen reference of DPO: each pair's summed chosen and rejected reply
    log-probabilities under `model` as it is now (fp32, on the CPU); `bar` counts pairs."""
    was_training = model.training
    model.eval()
    chosen, rejected = [], []
    for start in range(0, len(pairs), _EVAL_PAIRS):
        c, r = _chosen_rejected(model, pairs[start : start + _EVAL_PAIRS], device)
        chosen.append(c.float().cpu())
        rejected.append(r.float().cpu())
        bar.update(len(c))
    model.train(was_training)
    if not pairs:
        return torch.zeros(0), torch.zeros(0)
    return torch.cat(chosen), torch.cat(rejected)


def _chosen_rejected(model, pairs: list[PairExample], device):
    chosen, rejected, *_ = pair_logps(model, _to(pair_tensors(pairs), device), len(pairs))
    return chosen, rejected


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def run_train(cfg: TrainConfig, echo=print) -> dict:
    cfg.validate()
    t_start = time.perf_counter()
    data = load_train_data(cfg.data)
    model_path = resolve_model(cfg.model)
    tokenizer = load_tokenizer(model_path)
    info = inspect_model(model_path, tokenizer)
    if data.model and Path(data.model).resolve() != model_path.resolve():
        echo(f"note: the data was generated by {data.model}; training {model_path}")
    fmt = resolve_format(cfg, data, tokenizer, model_path, echo)
    renderer = Renderer(fmt, tokenizer, min(cfg.max_length, info.context_length))
    stages = {"sft": ["sft"], "dpo": ["dpo"], "sft+dpo": ["sft", "dpo"]}[cfg.method]
    encode_stats = {}
    sft_train = sft_test = pairs_train = pairs_test = []
    if "sft" in stages:
        sft_train, sft_test, stats = encode_sft_splits(renderer, data)
        encode_stats.update(stats)
    if "dpo" in stages:
        pairs_train, pairs_test, stats = encode_pair_splits(
            renderer, data, cfg.dpo_max_pairs, cfg.seed
        )
        encode_stats.update(stats)

    out = Path(cfg.out).expanduser() if cfg.out else default_out(cfg)
    resume_from = Checkpoints(out, cfg.keep_checkpoints).resume_point(cfg.resume, echo)
    if resume_from is not None:
        check_checkpoint_base(resume_from, model_path, info.hash)
    # one writer at a time: the main process (rank 0 under accelerate launch) locks the
    # folder until the command ends
    hold_out_dir(out, lock=int(os.environ.get("RANK", "0")) == 0)
    if not cfg.resume and (out / "log.jsonl").exists():
        (out / "log.jsonl").unlink(missing_ok=True)  # every process gets here

    torch.manual_seed(cfg.seed)
    dtype = training_dtype(cfg.dtype)
    model = load_lora_model(model_path, cfg, dtype)
    resume_state = None
    if resume_from is not None:
        resume_state = Checkpoints.load(model, resume_from)
        echo(f"resume: from {resume_from.name}")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total_params = sum(p.numel() for p in model.parameters())
    echo(
        f"model: {model_path} ({dtype}), LoRA r={cfg.lora.r} on {', '.join(cfg.lora.target_modules)}: "
        f"{trainable / 1e6:.2f}M trainable of {total_params / 1e6:.1f}M; format {fmt.name}"
    )
    trainer = Trainer(model, cfg, out, echo)
    acc = trainer.accelerator
    results = []
    done_stages = stages[: stages.index(resume_state["stage"])] if resume_state else []

    if "sft" in stages and "sft" not in done_stages:
        echo(
            f"sft: {len(sft_train)} dialogues ({sum(e.target_tokens for e in sft_train)} reply "
            f"tokens), eval {len(sft_test)}"
        )
        sft = SFTStage(cfg, sft_train, sft_test, acc.device)
        results.append(trainer.run_stage(sft, resume_state))
        resume_state = None

    if "dpo" in stages:
        ref_path = out / "checkpoints" / "dpo_reference.pt"
        if resume_state and ref_path.is_file():
            ref = torch.load(ref_path)
        else:
            # a forward pass per pair through the frozen model: minutes on a CPU, so it has a bar
            total = len(pairs_train) + len(pairs_test)
            with tqdm(
                total=total,
                desc="dpo reference",
                unit="pair",
                dynamic_ncols=True,
                disable=not acc.is_main_process,
            ) as bar:
                ref = {
                    "train": _reference_logps(trainer.model, pairs_train, acc.device, bar),
                    "test": _reference_logps(trainer.model, pairs_test, acc.device, bar),
                }
            if acc.is_main_process:
                ref_path.parent.mkdir(parents=True, exist_ok=True)
                torch.save(ref, ref_path)
        echo(f"dpo: {len(pairs_train)} pairs, eval {len(pairs_test)}")
        dpo = DPOStage(cfg, pairs_train, pairs_test, ref, acc.device)
        results.append(trainer.run_stage(dpo, resume_state))

    model = trainer.model
    state = trainer.full_state(trainer.wrapped)  # every process takes part
    if not acc.is_main_process:
        return {}
    model.save_pretrained(str(out), state_dict=state)
    meta = {
        "base_model": str(model_path),
        "base_model_hash": info.hash,
        "format": fmt.name,
        "method": cfg.method,
        "r": cfg.lora.r,
        "vocab_size": info.vocab_size,
    }
    (out / META).write_text(json.dumps(meta, indent=2) + "\n")
    (out / "train_config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
    if (out / "log.jsonl").is_file():
        plot_loss(out / "log.jsonl", out / "loss.png")
    merged = None
    if cfg.merge:
        merged = out / "merged"
        echo(f"merging the adapter into {merged} ...")
        merge_adapter(model, tokenizer, merged)
    summary = {
        "out": str(out),
        "method": cfg.method,
        "model": str(model_path),
        "format": fmt.name,
        "dtype": str(dtype).replace("torch.", ""),
        "trainable_parameters": trainable,
        "processes": trainer.world_size,
        "micro_batches_per_step": trainer.per_step,
        "encode": encode_stats,
        "stages": [r.summary() for r in results],
        "seconds": round(time.perf_counter() - t_start, 2),
        "merged": str(merged) if merged else None,
        "versions": package_versions(),
        "git_commit": git_commit(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def default_out(cfg: TrainConfig) -> Path:
    p = Path(cfg.data).expanduser()
    run = p.parent if (p / "dataset_dict.json").is_file() else p
    return (run if run.is_dir() else p.parent) / "adapter"
