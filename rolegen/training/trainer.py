"""The training loop: one stage (SFT, DPO, ...) at a time over the same LoRA model.

Supports: AdamW on the trainable weights with warmup then a cosine, linear or
constant schedule (`_lr_lambda`); gradient accumulation and clipping; `--max-steps`
in place of epochs (the data cycles); eval every `eval_steps`; a log row per
optimizer step (log.jsonl, plotted by `plot_loss`); checkpoints of the adapter and
the trainer state that `--resume` continues from, replaying the data order up to
the checkpoint; `accelerate launch` (DDP, FSDP), each process taking its share of
the micro-batches (`_shard`).

A stage supplies the data and the loss (the `Stage` protocol); the trainer knows
nothing of SFT or DPO. Non-goals: building the model (`lora.py`), the losses
(`losses.py`), mixed-precision scaling (bf16 autocast lives in `losses.token_logps`).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from tqdm import tqdm

from rolegen import interrupts
from rolegen.config import TrainConfig
from rolegen.errors import RolegenError
from rolegen.models.adapters import write_folder


class Stage(Protocol):
    """What `Trainer.run_stage` trains."""

    name: str  # in log rows and checkpoint names: "sft", "dpo"
    epochs: float
    lr: float

    def micro_batches(self, epoch: int) -> list:
        """The epoch's micro-batch specs, in order (the trainer shards them)."""
        ...

    def step(self, model, spec) -> tuple[torch.Tensor, dict]:
        """The loss of one micro-batch and its stats: "tokens", optionally "padded" and
        "target_tokens"; other keys go into the log row as they are."""
        ...

    def evaluate(self, model) -> dict:
        """Eval-split scores (model in eval mode, no grad); {} without an eval split."""
        ...


@dataclass
class StageResult:
    name: str
    steps: int = 0
    tokens: int = 0  # real tokens through the model
    padded: int = 0
    target_tokens: int = 0
    seconds: float = 0.0
    train_loss: float | None = None
    eval: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The stage's entry in summary.json."""
        return {
            "name": self.name,
            "steps": self.steps,
            "tokens": self.tokens,
            "padded_tokens": self.padded,
            "padded_share": round(self.padded / max(1, self.tokens + self.padded), 4),
            "target_tokens": self.target_tokens,
            "seconds": round(self.seconds, 2),
            "tokens_per_second": round(self.tokens / self.seconds, 1) if self.seconds else None,
            "final_train_loss": self.train_loss,
            "eval": self.eval,
        }


def _lr_lambda(cfg: TrainConfig, total: int):
    warm = int(total * cfg.warmup_ratio)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        if cfg.scheduler == "constant":
            return 1.0
        done = (step - warm) / max(1, total - warm)
        if cfg.scheduler == "linear":
            return max(0.0, 1.0 - done)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, done)))

    return f


class Checkpoints:
    """`out/checkpoints/<stage>-<step>/`: adapter weights + trainer state, written to a
    temp folder and renamed, so a crash never leaves a half checkpoint."""

    def __init__(self, out: Path, keep: int):
        self.root = out / "checkpoints"
        self.keep = keep

    def save(
        self, model, state_dict, optimizer, scheduler, stage: str, step: int, extra: dict
    ) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

        def fill(tmp: Path) -> None:
            model.save_pretrained(str(tmp), state_dict=state_dict)
            torch.save(
                {
                    "stage": stage,
                    "step": step,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state(),
                    **extra,
                },
                tmp / "trainer_state.pt",
            )

        write_folder(self.root / f"{stage}-{step:06d}", fill)
        for old in self.list()[: -self.keep] if self.keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)

    def list(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(
            (p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: (_STAGE_ORDER.get(p.name.rsplit("-", 1)[0], 9), p.name),
        )

    def latest(self) -> Path | None:
        found = self.list()
        return found[-1] if found else None

    def resume_point(self, resume: bool, echo) -> Path | None:
        """The checkpoint `--resume` continues from; refuses to train over an earlier
        run's checkpoints without `--resume`."""
        latest = self.latest()
        if latest is not None and not resume:
            raise RolegenError(
                f"{self.root.parent} holds checkpoints of an earlier run: pass --resume, or "
                "another --out"
            )
        if resume and latest is None:
            echo(f"resume: no checkpoint in {self.root.parent}; starting fresh")
        return latest if resume else None

    @staticmethod
    def load(model, checkpoint: Path) -> dict:
        """Put the checkpoint's adapter weights into `model`; returns its trainer state."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(str(checkpoint / "adapter_model.safetensors")))
        return torch.load(checkpoint / "trainer_state.pt", weights_only=False)


_STAGE_ORDER = {"sft": 0, "dpo": 1}


def accumulation_for(configured: int, world_size: int) -> int:
    """Micro-batches each process accumulates so that one optimizer step still sees the
    configured `gradient_accumulation` micro-batches over all processes (rounded when the
    world size does not divide it; at least 1)."""
    return max(1, round(configured / world_size))


class Trainer:
    """Runs stages one after another on `model`; `model` is the unwrapped model after
    each, `wrapped` the one accelerate prepared (what `full_state` gathers from)."""

    def __init__(self, model, cfg: TrainConfig, out: Path, echo=print):
        from accelerate import Accelerator, PartialState

        self.cfg = cfg
        self.out = out
        # without a GPU, processes started by `accelerate launch` / torchrun join over gloo
        cpu = not torch.cuda.is_available()
        self.world_size = PartialState(cpu=cpu).num_processes
        self.accumulation = accumulation_for(cfg.gradient_accumulation, self.world_size)
        self.accelerator = Accelerator(gradient_accumulation_steps=self.accumulation, cpu=cpu)
        self.model = model
        self.wrapped = model  # as accelerate prepared it, after a stage
        self.checkpoints = Checkpoints(out, cfg.keep_checkpoints)
        self.log_path = out / "log.jsonl"
        self.per_step = self.accumulation * self.world_size  # micro-batches per step
        if self.world_size > 1:
            echo(
                f"accelerate: {self.world_size} processes x {self.accumulation} micro-batches "
                f"per optimizer step (--gradient-accumulation {cfg.gradient_accumulation})"
            )
        if self.per_step != cfg.gradient_accumulation:
            echo(
                f"note: {self.world_size} processes do not divide --gradient-accumulation "
                f"{cfg.gradient_accumulation}: a step sees {self.per_step} micro-batches"
            )

    def full_state(self, model) -> dict | None:
        """The whole state dict where FSDP shards the weights (gathered: every process must
        call this); None otherwise, and the unwrapped model saves its own."""
        from accelerate.utils import DistributedType

        if self.accelerator.distributed_type != DistributedType.FSDP:
            return None
        return self.accelerator.get_state_dict(model)

    def _log(self, row: dict) -> None:
        if self.accelerator.is_main_process:
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

    def _steps(self, micro_per_epoch: int, epochs: float) -> int:
        per_epoch = math.ceil(micro_per_epoch / self.accumulation)
        # --max-steps replaces the epochs (as in transformers' Trainer), cycling the data
        return self.cfg.max_steps or max(1, math.ceil(per_epoch * epochs))

    def _micro_batches(self, stage: Stage, epoch: int) -> list:
        return _shard(stage.micro_batches(epoch), self.accelerator)

    def run_stage(self, stage: Stage, resume_state: dict | None) -> StageResult:
        """Train `stage` for its epochs (or `--max-steps`); from the checkpoint's step if
        `resume_state` is of this stage."""
        cfg, acc, name = self.cfg, self.accelerator, stage.name
        result = StageResult(name)
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=stage.lr, weight_decay=cfg.weight_decay)
        per_epoch = len(self._micro_batches(stage, 0))
        if per_epoch == 0:
            raise RolegenError(f"{name}: no training batches (empty training data)")
        total = self._steps(per_epoch, stage.epochs)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg, total))
        # the scheduler stays unwrapped: accelerate's would step once per process per step
        # (it assumes a dataloader sharded by accelerate); `total` already counts steps
        model, optimizer = acc.prepare(self.model, optimizer)
        start_step = 0
        if resume_state and resume_state["stage"] == name:
            optimizer.load_state_dict(resume_state["optimizer"])
            scheduler.load_state_dict(resume_state["scheduler"])
            torch.set_rng_state(resume_state["rng"])
            start_step = resume_state["step"]
            result.tokens = resume_state.get("tokens", 0)
            result.target_tokens = resume_state.get("target_tokens", 0)
            result.seconds = resume_state.get("seconds", 0.0)
        step, micro, epoch = 0, 0, 0
        losses = []
        bar = tqdm(
            total=total, initial=start_step, desc=name, unit="step", disable=not acc.is_main_process
        )
        t0 = time.perf_counter() - result.seconds
        model.train()
        while step < total:
            in_epoch = 0
            for spec in self._micro_batches(stage, epoch):
                if step >= total:
                    break
                interrupts.check()  # a stop the signal handler could not raise (interrupts.py)
                if step < start_step:  # replay the data order up to the checkpoint
                    micro += 1
                    if micro % self.accumulation == 0:
                        step += 1
                    continue
                with acc.accumulate(model):
                    loss, stats = stage.step(model, spec)
                    acc.backward(loss)
                    if acc.sync_gradients and cfg.max_grad_norm > 0:
                        acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    if acc.sync_gradients:
                        scheduler.step()
                    optimizer.zero_grad()
                losses.append(float(loss.detach()))
                result.tokens += stats["tokens"]
                result.padded += stats.get("padded", 0)
                result.target_tokens += stats.get("target_tokens", 0)
                micro += 1
                in_epoch += 1
                if micro % self.accumulation:
                    continue
                step += 1
                bar.update(1)
                train_loss = sum(losses) / len(losses)
                losses = []
                result.train_loss = train_loss
                result.seconds = time.perf_counter() - t0
                row = {
                    "stage": name,
                    "step": step,
                    "epoch": round(epoch + in_epoch / per_epoch, 3),
                    "loss": round(train_loss, 5),
                    "lr": scheduler.get_last_lr()[0],
                    "tokens": result.tokens,
                    "seconds": round(result.seconds, 2),
                    **{
                        k: v
                        for k, v in stats.items()
                        if k not in ("tokens", "padded", "target_tokens")
                    },
                }
                bar.set_postfix(loss=f"{train_loss:.3f}")
                if (cfg.eval_steps and step % cfg.eval_steps == 0) or step == total:
                    model.eval()
                    with torch.no_grad():
                        result.eval = stage.evaluate(self.model)
                    model.train()
                    row.update({f"eval_{k}": v for k, v in result.eval.items()})
                self._log(row)
                if (cfg.save_steps and step % cfg.save_steps == 0) or step == total:
                    state = self.full_state(model)  # every process takes part
                    if acc.is_main_process:
                        self.checkpoints.save(
                            acc.unwrap_model(model),
                            state,
                            optimizer,
                            scheduler,
                            name,
                            step,
                            {
                                "tokens": result.tokens,
                                "target_tokens": result.target_tokens,
                                "seconds": result.seconds,
                            },
                        )
            epoch += 1
        bar.close()
        result.steps = step
        result.seconds = time.perf_counter() - t0
        self.wrapped = model
        self.model = acc.unwrap_model(model)
        return result


def _shard(items: list, acc) -> list:
    """Each process takes every world-size-th micro-batch (DDP under accelerate launch).
    The list is first padded with its own head to a multiple of the world size (as
    torch's DistributedSampler does): every process then runs the same number of
    steps, and none waits forever in a gradient all-reduce the others never join."""
    world = acc.num_processes
    if world == 1 or not items:
        return items
    padded = items + (items * world)[: -len(items) % world]
    return padded[acc.process_index :: world]


def plot_loss(log_path: Path, png: Path) -> None:
    """Train (and eval) loss per optimizer step, one panel per stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(x) for x in log_path.read_text().splitlines() if x.strip()]
    stages = list(dict.fromkeys(r["stage"] for r in rows))
    fig, axes = plt.subplots(1, len(stages), figsize=(5.5 * len(stages), 3.6), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        rs = [r for r in rows if r["stage"] == stage]
        ax.plot([r["step"] for r in rs], [r["loss"] for r in rs], label="train", lw=1)
        ev = [r for r in rs if "eval_loss" in r]
        if ev:
            ax.plot([r["step"] for r in ev], [r["eval_loss"] for r in ev], "o-", label="eval")
        ax.set_title(f"{stage} loss")
        ax.set_xlabel("optimizer step")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
