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
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from rolegen.config import TrainConfig, to_dict
from rolegen.errors import RolegenError
from rolegen.models import inspect_model, load_tokenizer, resolve_model
from rolegen.runs import git_commit, package_versions
from rolegen.templates import Templates
from rolegen.train_data import IGNORE, Example, PairExample, Renderer, collate_packed, pack

ADAPTER_META = "rolegen_adapter.json"


# ---------------------------------------------------------------- data


@dataclass
class TrainData:
    train: list[dict]
    test: list[dict]
    pairs_train: list[dict]
    pairs_test: list[dict]
    format: str | None  # what the data was generated with, if known
    model: str | None
    source: str


def _rows(ds) -> list[dict]:
    return [dict(r) for r in ds]


def load_train_data(path: str | Path) -> TrainData:
    """A run folder, its `dataset/` (save_to_disk), or a JSONL/parquet of `messages`."""
    import datasets

    datasets.disable_progress_bars()
    p = Path(path).expanduser()
    if not p.exists():
        raise RolegenError(f"--data {p}: not found")
    run = None
    if p.is_dir() and (p / "dataset" / "dataset_dict.json").is_file():
        run, p = p, p / "dataset"
    elif p.is_dir() and (p / "dataset_dict.json").is_file():
        run = p.parent
    train, test = [], []
    if p.is_dir():
        if not (p / "dataset_dict.json").is_file():
            raise RolegenError(
                f"--data {p}: not a dataset folder (no dataset_dict.json); pass the run folder "
                "or its dataset/ that `rolegen filter` wrote"
            )
        dd = datasets.load_from_disk(str(p))
        train = _rows(dd["train"]) if "train" in dd else []
        test = _rows(dd["test"]) if "test" in dd else []
    elif p.suffix in (".jsonl", ".json", ".parquet"):
        kind = "parquet" if p.suffix == ".parquet" else "json"
        try:
            train = _rows(datasets.load_dataset(kind, data_files=str(p), split="train"))
        except Exception as e:
            raise RolegenError(f"--data {p}: cannot read ({type(e).__name__}: {e})") from None
    else:
        raise RolegenError(f"--data {p}: expected a folder, .jsonl or .parquet")
    for i, row in enumerate(train + test):
        msgs = row.get("messages")
        if not isinstance(msgs, list) or not all(
            isinstance(m, dict) and m.get("role") in ("system", "user", "assistant") for m in msgs
        ):
            raise RolegenError(
                f"--data {p}: row {i} has no valid 'messages' (a list of role/content dicts)"
            )
    pairs_train, pairs_test, fmt, model = [], [], None, None
    if run is not None:
        pref = run / "preference"
        if (pref / "dataset_dict.json").is_file():
            dd = datasets.load_from_disk(str(pref))
            pairs_train = _rows(dd["train"]) if "train" in dd else []
            pairs_test = _rows(dd["test"]) if "test" in dd else []
        report = run / "filter_report.json"
        if report.is_file():
            meta = json.loads(report.read_text())
            fmt, model = meta.get("format"), meta.get("model")
    return TrainData(train, test, pairs_train, pairs_test, fmt, model, str(p))


def _names(row: dict) -> tuple[str, str]:
    return row.get("persona_name") or "Character", row.get("user_name") or "User"


def encode_sft(renderer: Renderer, rows: list[dict]) -> tuple[list[Example], dict]:
    examples, stats = [], {"too_long": 0, "no_target": 0, "dropped_messages": 0}
    for row in rows:
        e = renderer.sft_example(row["messages"], _names(row), id=str(row.get("id", "")))
        if e is None:
            stats["too_long"] += 1
        elif e.target_tokens == 0:
            stats["no_target"] += 1
        else:
            stats["dropped_messages"] += e.dropped_messages
            examples.append(e)
    return examples, stats


def encode_pairs(renderer: Renderer, rows: list[dict]) -> tuple[list[PairExample], dict]:
    pairs, stats = [], {"too_long": 0}
    for k, row in enumerate(rows):
        for key in ("prompt", "chosen", "rejected"):
            value = row.get(key)
            if not isinstance(value, list) or (key != "prompt" and not value):
                raise RolegenError(
                    f"preference pair {row.get('id', k)}: field '{key}' must be a list of "
                    "messages (TRL's conversational prompt/chosen/rejected)"
                )
        pe = renderer.pair_example(
            row["prompt"],
            row["chosen"][-1]["content"],
            row["rejected"][-1]["content"],
            _names(row),
            id=str(row.get("id", "")),
        )
        if pe is None or pe.chosen.target_tokens == 0 or pe.rejected.target_tokens == 0:
            stats["too_long"] += 1
        else:
            pairs.append(pe)
    return pairs, stats


# ---------------------------------------------------------------- model


def _dtype(option: str) -> torch.dtype:
    if option == "float32":
        return torch.float32
    if option == "bfloat16":
        return torch.bfloat16
    if option != "auto":
        raise RolegenError(f"--dtype {option}: choose auto, bfloat16 or float32")
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    # bf16 pays on CPUs with native bf16 matmuls (AMX or AVX-512 BF16); elsewhere it is emulated.
    return torch.bfloat16 if ("amx_bf16" in flags or "avx512_bf16" in flags) else torch.float32


def load_lora_model(model_path: Path, cfg: TrainConfig, dtype: torch.dtype):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rolegen import packed_attention

    model = AutoModelForCausalLM.from_pretrained(
        model_path, dtype=dtype, attn_implementation=packed_attention.register()
    )
    names = {
        n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)
    }
    missing = [t for t in cfg.lora.target_modules if t not in names]
    if missing:
        raise RolegenError(
            f"--target-module {', '.join(missing)}: no such linear module in {model_path} "
            f"(it has {', '.join(sorted(names))})"
        )
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    lora = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=list(cfg.lora.target_modules),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    if dtype == torch.bfloat16:
        # PEFT casts each adapter's input to the adapters' fp32 and autocast casts it back:
        # two copies of every activation per adapted layer (17% of a CPU step). Under
        # autocast (token_logps) the bf16 input can go straight in.
        for module in model.modules():
            if hasattr(module, "lora_A"):
                module.cast_input_dtype_enabled = False
    return model


# ---------------------------------------------------------------- losses


def token_logps(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of the labels (0 where masked), the mask, and the
    segment of each, at the positions where some row has a target. Packed rows: no
    attention mask, position ids only. Logits are kept only where a label falls
    (`logits_to_keep`): the full-vocabulary logits of every position would take
    more memory than the model."""
    labels = batch["labels"][:, 1:]
    keep = torch.nonzero((labels != IGNORE).any(dim=0)).squeeze(-1)
    # the model may come wrapped (DistributedDataParallel under accelerate launch)
    weight = getattr(model, "module", model).get_input_embeddings().weight
    # A bf16 base with fp32 LoRA weights: autocast runs the adapters' matmuls in bf16 too
    # (measured: 413 vs 306 tokens/s on the CPU here) while AdamW updates fp32 weights.
    with torch.autocast(weight.device.type, torch.bfloat16, enabled=weight.dtype == torch.bfloat16):
        # use_cache=False: with a cache, transformers skips the packed-sequence mask
        out = model(
            input_ids=batch["input_ids"],
            position_ids=batch["position_ids"],
            cu_seq_lens_q=batch.get("cu_seq_lens_q"),
            use_cache=False,
            logits_to_keep=keep,
        )
    labels = labels[:, keep]
    mask = labels != IGNORE
    logps = -F.cross_entropy(
        out.logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE, reduction="none"
    ).view_as(labels)
    return logps * mask, mask, batch["segments"][:, 1:][:, keep]


def segment_sums(values: torch.Tensor, segments: torch.Tensor, n: int) -> torch.Tensor:
    flat_seg = segments.reshape(-1).clamp(min=0)
    return torch.zeros(n, dtype=values.dtype, device=values.device).index_add(
        0, flat_seg, values.reshape(-1) * (segments.reshape(-1) >= 0)
    )


def sft_loss(model, batch: dict) -> tuple[torch.Tensor, int]:
    logps, mask, _ = token_logps(model, batch)
    n = int(mask.sum())
    return -logps.sum() / max(n, 1), n


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sigmoid DPO (Rafailov et al. 2023) on summed reply log-probabilities; returns the
    mean loss and each pair's reward margin."""
    margin = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    return -F.logsigmoid(margin).mean(), margin.detach()


# ---------------------------------------------------------------- batches


def sft_batches(examples: list[Example], cfg: TrainConfig, epoch: int) -> list[list[list[int]]]:
    """Micro-batches of packed rows (example indices); row order shuffled per epoch."""
    rows = pack(examples, cfg.max_length)
    random.Random(cfg.seed * 1000 + epoch).shuffle(rows)
    return [rows[i : i + cfg.batch_size] for i in range(0, len(rows), cfg.batch_size)]


def pair_batches(pairs: list[PairExample], cfg: TrainConfig, epoch: int) -> list[list[int]]:
    order = list(range(len(pairs)))
    random.Random(cfg.seed * 1000 + epoch).shuffle(order)
    # batch_size rows hold about batch_size * max_length tokens; a pair takes two sequences.
    per = max(1, cfg.batch_size * cfg.max_length // max(1, 2 * _mean_len(pairs)))
    return [order[i : i + per] for i in range(0, len(order), per)]


def _mean_len(pairs: list[PairExample]) -> int:
    return int(sum(len(p.chosen) + len(p.rejected) for p in pairs) / (2 * max(1, len(pairs))))


def pair_tensors(pairs: list[PairExample]) -> dict:
    """The chosen and rejected sequences of the pairs in one flat packed row; segment
    2k is pair k's chosen, 2k+1 its rejected."""
    return collate_packed([[e for p in pairs for e in (p.chosen, p.rejected)]])


# ---------------------------------------------------------------- loop


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
        final = self.root / f"{stage}-{step:06d}"
        tmp = self.root / f".tmp-{stage}-{step:06d}"
        shutil.rmtree(tmp, ignore_errors=True)
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
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
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


_STAGE_ORDER = {"sft": 0, "dpo": 1}


def accumulation_for(configured: int, world_size: int) -> int:
    """Micro-batches each process accumulates so that one optimizer step still sees the
    configured `gradient_accumulation` micro-batches over all processes (rounded when the
    world size does not divide it; at least 1)."""
    return max(1, round(configured / world_size))


class Trainer:
    def __init__(self, model, cfg: TrainConfig, out: Path):
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

    def run_stage(
        self,
        name: str,
        epochs: float,
        lr: float,
        micro_batches,  # epoch -> list of micro-batch specs
        loss_fn,  # spec -> (loss, stats dict)
        evaluate,  # () -> dict
        resume_state: dict | None,
    ) -> StageResult:
        cfg, acc = self.cfg, self.accelerator
        result = StageResult(name)
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
        per_epoch = len(micro_batches(0))
        if per_epoch == 0:
            raise RolegenError(f"{name}: no training batches (empty training data)")
        total = self._steps(per_epoch, epochs)
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
            for spec in micro_batches(epoch):
                if step >= total:
                    break
                if step < start_step:  # replay the data order up to the checkpoint
                    micro += 1
                    if micro % self.accumulation == 0:
                        step += 1
                    continue
                with acc.accumulate(model):
                    loss, stats = loss_fn(model, spec)
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
                        result.eval = evaluate()
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


# ---------------------------------------------------------------- recipe


def _resolve_format(cfg: TrainConfig, data: TrainData, tokenizer, model_path: Path, echo):
    if cfg.format and data.format and cfg.format != data.format:
        echo(
            f"note: the data was generated with format '{data.format}', training renders it "
            f"with '{cfg.format}'; generate with --format {cfg.format} to match"
        )
    name = cfg.format or data.format
    templates = Templates(cfg.templates)
    if name in (None, "chat_template") and not getattr(tokenizer, "chat_template", None):
        raise RolegenError(
            f"{data.source} was generated with a chat template, but the tokenizer of "
            f"{model_path} has none; pass --format (one of {', '.join(templates.formats())})"
        )
    return templates.resolve_format(name, tokenizer, model_path)


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


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


def _plot(log_path: Path, png: Path) -> None:
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


def default_out(cfg: TrainConfig) -> Path:
    p = Path(cfg.data).expanduser()
    run = p.parent if (p / "dataset_dict.json").is_file() else p
    return (run if run.is_dir() else p.parent) / "adapter"


def _sample(rows: list, n: int, seed: int) -> list:
    """At most n rows, a seeded sample in their original order."""
    if len(rows) <= n:
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in keep]


def run_train(cfg: TrainConfig, echo=print) -> dict:
    if not cfg.data:
        raise RolegenError("no --data given: pass a run folder or its dataset/ folder")
    for name in ("batch_size", "gradient_accumulation", "max_length", "lora.r"):
        obj, attr = (cfg.lora, "r") if name == "lora.r" else (cfg, name)
        if getattr(obj, attr) < 1:
            raise RolegenError(
                f"--{name.replace('_', '-').replace('lora.r', 'lora-r')} must be at least 1"
            )
    t_start = time.perf_counter()
    data = load_train_data(cfg.data)
    model_path = resolve_model(cfg.model)
    tokenizer = load_tokenizer(model_path)
    info = inspect_model(model_path, tokenizer)
    if data.model and Path(data.model).resolve() != model_path.resolve():
        echo(f"note: the data was generated by {data.model}; training {model_path}")
    fmt = _resolve_format(cfg, data, tokenizer, model_path, echo)
    max_length = min(cfg.max_length, info.context_length)
    renderer = Renderer(fmt, tokenizer, max_length)
    stages = {"sft": ["sft"], "dpo": ["dpo"], "sft+dpo": ["sft", "dpo"]}[cfg.method]

    encode_stats = {}
    sft_train = sft_test = pairs_train = pairs_test = []
    if "sft" in stages:
        if not data.train:
            raise RolegenError(f"{data.source}: the train split is empty")
        sft_train, encode_stats["sft_train"] = encode_sft(renderer, data.train)
        sft_test, encode_stats["sft_test"] = encode_sft(renderer, data.test)
        if not sft_train:
            raise RolegenError(
                f"{data.source}: no dialogue has a character turn within --max-length "
                f"{max_length} tokens ({encode_stats['sft_train']})"
            )
    if "dpo" in stages:
        if not data.pairs_train:
            raise RolegenError(
                f"{data.source}: no preference pairs (the run's preference/ folder). They come "
                "from turns the checks rejected while generating (rolegen generate --check); "
                "use --method sft, or generate more dialogues"
            )
        rows_train, rows_test = data.pairs_train, data.pairs_test
        if cfg.dpo_max_pairs:
            rows_train = _sample(rows_train, cfg.dpo_max_pairs, cfg.seed)
            rows_test = _sample(rows_test, max(1, cfg.dpo_max_pairs // 8), cfg.seed)
        pairs_train, encode_stats["dpo_train"] = encode_pairs(renderer, rows_train)
        pairs_test, encode_stats["dpo_test"] = encode_pairs(renderer, rows_test)
        if not pairs_train:
            raise RolegenError(
                f"{data.source}: no preference pair fits --max-length {max_length} tokens"
            )

    out = Path(cfg.out).expanduser() if cfg.out else default_out(cfg)
    checkpoints = Checkpoints(out, cfg.keep_checkpoints)
    resume_from = None
    if checkpoints.latest() is not None and not cfg.resume:
        raise RolegenError(
            f"{out} holds checkpoints of an earlier run: pass --resume, or another --out"
        )
    if cfg.resume:
        resume_from = checkpoints.latest()
        if resume_from is None:
            echo(f"resume: no checkpoint in {out}; starting fresh")
    out.mkdir(parents=True, exist_ok=True)
    if not cfg.resume and (out / "log.jsonl").exists():
        (out / "log.jsonl").unlink(missing_ok=True)  # every process gets here

    torch.manual_seed(cfg.seed)
    dtype = _dtype(cfg.dtype)
    model = load_lora_model(model_path, cfg, dtype)
    resume_state = None
    if resume_from is not None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(str(resume_from / "adapter_model.safetensors")))
        resume_state = torch.load(resume_from / "trainer_state.pt", weights_only=False)
        echo(f"resume: from {resume_from.name}")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total_params = sum(p.numel() for p in model.parameters())
    echo(
        f"model: {model_path} ({dtype}), LoRA r={cfg.lora.r} on {', '.join(cfg.lora.target_modules)}: "
        f"{trainable / 1e6:.2f}M trainable of {total_params / 1e6:.1f}M; format {fmt.name}"
    )
    trainer = Trainer(model, cfg, out)
    acc = trainer.accelerator
    per_step = trainer.accumulation * trainer.world_size
    if trainer.world_size > 1:
        echo(
            f"accelerate: {trainer.world_size} processes x {trainer.accumulation} micro-batches "
            f"per optimizer step (--gradient-accumulation {cfg.gradient_accumulation})"
        )
    if per_step != cfg.gradient_accumulation:
        echo(
            f"note: {trainer.world_size} processes do not divide --gradient-accumulation "
            f"{cfg.gradient_accumulation}: a step sees {per_step} micro-batches"
        )
    results = []
    done_stages = []
    if resume_state:
        done_stages = stages[: stages.index(resume_state["stage"])]

    if "sft" in stages and "sft" not in done_stages:
        echo(
            f"sft: {len(sft_train)} dialogues ({sum(e.target_tokens for e in sft_train)} reply "
            f"tokens), eval {len(sft_test)}"
        )

        def sft_micro(epoch):
            return _shard(sft_batches(sft_train, cfg, epoch), acc)

        def sft_step(model, rows):
            batch = collate_packed([[sft_train[i] for i in row] for row in rows])
            loss, n = sft_loss(model, _to(batch, acc.device))
            real = sum(len(sft_train[i]) for row in rows for i in row)
            width = batch["input_ids"].numel()
            return loss, {"tokens": real, "padded": width - real, "target_tokens": n}

        def sft_eval():
            if not sft_test:
                return {}
            total_nll, total_n = 0.0, 0
            for rows in sft_batches(sft_test, cfg, 0):
                batch = collate_packed([[sft_test[i] for i in row] for row in rows])
                loss, n = sft_loss(trainer.model, _to(batch, acc.device))
                total_nll += float(loss) * n
                total_n += n
            return {"loss": round(total_nll / max(1, total_n), 5)}

        results.append(
            trainer.run_stage(
                "sft", cfg.epochs, cfg.learning_rate, sft_micro, sft_step, sft_eval, resume_state
            )
        )
        resume_state = None

    if "dpo" in stages:
        ref_path = out / "checkpoints" / "dpo_reference.pt"
        if resume_state and ref_path.is_file():
            ref = torch.load(ref_path)
        else:
            echo(f"dpo: reference log-probabilities of {len(pairs_train) + len(pairs_test)} pairs")
            ref = {
                "train": _pair_logps(trainer.model, pairs_train, acc.device),
                "test": _pair_logps(trainer.model, pairs_test, acc.device),
            }
            if acc.is_main_process:
                ref_path.parent.mkdir(parents=True, exist_ok=True)
                torch.save(ref, ref_path)
        echo(f"dpo: {len(pairs_train)} pairs, eval {len(pairs_test)}")

        def dpo_micro(epoch):
            return _shard(pair_batches(pairs_train, cfg, epoch), acc)

        def dpo_step(model, idxs):
            chosen, rejected, n_chosen, nll, tokens, width = _policy_logps(
                model, [pairs_train[i] for i in idxs], acc.device
            )
            ref_c, ref_r = ref["train"][0][idxs].to(chosen), ref["train"][1][idxs].to(chosen)
            loss, margin = dpo_loss(chosen, rejected, ref_c, ref_r, cfg.beta)
            if cfg.dpo_sft_weight:
                loss = loss + cfg.dpo_sft_weight * nll
            return loss, {
                "tokens": tokens,
                "padded": width - tokens,
                "target_tokens": n_chosen,
                "reward_accuracy": round(float((margin > 0).float().mean()), 4),
                "margin": round(float(margin.mean()), 4),
            }

        def dpo_eval():
            if not pairs_test:
                return {}
            margins, losses = [], []
            for start in range(0, len(pairs_test), 8):
                idxs = list(range(start, min(start + 8, len(pairs_test))))
                c, r, *_ = _policy_logps(trainer.model, [pairs_test[i] for i in idxs], acc.device)
                loss, m = dpo_loss(
                    c, r, ref["test"][0][idxs].to(c), ref["test"][1][idxs].to(c), cfg.beta
                )
                margins.append(m)
                losses.append(float(loss) * len(idxs))
            m = torch.cat(margins)
            return {
                "loss": round(sum(losses) / len(pairs_test), 5),
                "reward_accuracy": round(float((m > 0).float().mean()), 4),
                "margin": round(float(m.mean()), 4),
            }

        results.append(
            trainer.run_stage(
                "dpo",
                cfg.dpo_epochs,
                cfg.dpo_learning_rate,
                dpo_micro,
                dpo_step,
                dpo_eval,
                resume_state,
            )
        )

    model = trainer.model
    state = trainer.full_state(trainer.wrapped)  # every process takes part
    if not acc.is_main_process:
        return {}
    model.save_pretrained(str(out), state_dict=state)
    (out / ADAPTER_META).write_text(
        json.dumps(
            {
                "base_model": str(model_path),
                "base_model_hash": info.hash,
                "format": fmt.name,
                "method": cfg.method,
                "r": cfg.lora.r,
                "vocab_size": info.vocab_size,
            },
            indent=2,
        )
        + "\n"
    )
    (out / "train_config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
    if (out / "log.jsonl").is_file():
        _plot(out / "log.jsonl", out / "loss.png")
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
        "micro_batches_per_step": per_step,
        "encode": encode_stats,
        "stages": [
            {
                "name": r.name,
                "steps": r.steps,
                "tokens": r.tokens,
                "padded_tokens": r.padded,
                "padded_share": round(r.padded / max(1, r.tokens + r.padded), 4),
                "target_tokens": r.target_tokens,
                "seconds": round(r.seconds, 2),
                "tokens_per_second": round(r.tokens / r.seconds, 1) if r.seconds else None,
                "final_train_loss": r.train_loss,
                "eval": r.eval,
            }
            for r in results
        ],
        "seconds": round(time.perf_counter() - t_start, 2),
        "merged": str(merged) if merged else None,
        "versions": package_versions(),
        "git_commit": git_commit(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def merge_adapter(peft_model, tokenizer, dest: Path) -> Path:
    """The base model with the adapter folded in, saved as a plain checkpoint."""
    import copy

    tmp = dest.parent / f".tmp-{dest.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    merged = copy.deepcopy(peft_model).merge_and_unload()
    merged.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def _policy_logps(model, pairs: list[PairExample], device):
    """Summed reply log-probabilities of chosen and rejected, the chosen replies' NLL per
    token, and the token counts."""
    batch = pair_tensors(pairs)
    logps, mask, segments = token_logps(model, _to(batch, device))
    sums = segment_sums(logps, segments, 2 * len(pairs))
    counts = segment_sums(mask.to(logps.dtype), segments, 2 * len(pairs))
    real = sum(len(p.chosen) + len(p.rejected) for p in pairs)
    nll = -sums[0::2].sum() / counts[0::2].sum().clamp(min=1)
    return sums[0::2], sums[1::2], int(counts[0::2].sum()), nll, real, batch["input_ids"].numel()


@torch.no_grad()
def _pair_logps(model, pairs: list[PairExample], device):
    was_training = model.training
    model.eval()
    chosen, rejected = [], []
    for start in range(0, len(pairs), 8):
        c, r, *_ = _policy_logps(model, pairs[start : start + 8], device)
        chosen.append(c.float().cpu())
        rejected.append(r.float().cpu())
    model.train(was_training)
    if not pairs:
        return torch.zeros(0), torch.zeros(0)
    return torch.cat(chosen), torch.cat(rejected)
