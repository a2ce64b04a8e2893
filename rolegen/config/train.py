"""`rolegen train`'s settings: the data, the SFT and DPO stages, their losses and
schedules, checkpoints, and the LoRA adapter (`LoraSettings`, its own `lora:` section).
Train loads its model itself, so it takes only `--templates` from the shared model
section: its --model, --format and --dtype mean the training model's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rolegen.config.options import opt, section
from rolegen.config.shared import at_least, templates_field
from rolegen.errors import RolegenError
from rolegen.models.checkpoints import LLAMA_PROJECTIONS


@dataclass
class LoraSettings:
    r: int = opt(16, "LoRA rank.", flag="lora-r")
    alpha: float = opt(32.0, "LoRA alpha (the update is scaled by alpha / r).", flag="lora-alpha")
    dropout: float = opt(
        0.0,
        "Dropout on the LoRA branch (0 as in PEFT and torchtune: on a CPU its random masks "
        "cost about a third of a step).",
        flag="lora-dropout",
    )
    target_modules: list[str] = opt(
        factory=lambda: list(LLAMA_PROJECTIONS),
        flag="target-module",
        help="Module names that get a LoRA adapter. Repeatable. Default: every linear "
        "projection of a LLaMA block (q, k, v, o, gate, up, down).",
    )


@dataclass
class TrainConfig:
    data: str | None = opt(
        None,
        "The dataset: a run folder, its dataset/ folder (datasets.load_from_disk) or a "
        "messages JSONL or parquet. Preference pairs are read from the run's preference/ "
        "folder, so only with a run folder or its dataset/; a file brings none.",
    )
    model: str | None = opt(
        None, "Base model: local HF checkpoint or cached hub id. Default: the embedded model."
    )
    out: str | None = opt(None, "Adapter folder. Default: <run>/adapter beside the dataset.")
    init_adapter: str | None = opt(
        None,
        "Start from this adapter's weights (a `rolegen train` folder of the same base model "
        "and the same --lora-r, --lora-alpha and --target-module) instead of a fresh LoRA: "
        "a further round on data the adapter generated (`rolegen pipeline --rounds`).",
    )
    method: str = opt(
        "sft+dpo",
        "sft: supervised on the clean dialogues; dpo: preference training on (context, "
        "accepted, rejected) turns; sft+dpo: SFT, then DPO against the SFT model.",
        choices=["sft", "dpo", "sft+dpo"],
    )
    format: str | None = opt(
        None, "Prompt format to render with. Default: the one the data was generated with."
    )
    templates: str | None = templates_field()
    epochs: float = opt(3.0, "SFT epochs over the training split.")
    dpo_epochs: float = opt(2.0, "DPO epochs over the preference pairs.")
    max_steps: int | None = opt(
        None, "Optimizer steps per stage, in place of the epochs (the data cycles as needed)."
    )
    learning_rate: float = opt(2e-4, "SFT peak learning rate.")
    dpo_learning_rate: float = opt(5e-5, "DPO peak learning rate.")
    scheduler: str = opt(
        "cosine", "Learning-rate schedule after warmup.", choices=["cosine", "linear", "constant"]
    )
    warmup_ratio: float = opt(0.05, "Share of each stage's steps spent warming up.")
    weight_decay: float = opt(0.0, "AdamW weight decay on the LoRA weights.")
    max_grad_norm: float = opt(1.0, "Gradient clipping norm (0 = off).")
    batch_size: int = opt(
        1, "Packed rows (of --max-length tokens) per micro-batch; raise it on a GPU."
    )
    gradient_accumulation: int = opt(4, "Micro-batches per optimizer step.")
    max_length: int = opt(
        2048,
        "Longest training sequence in tokens (also the packed row length); longer "
        "dialogues are cut into windows that each fit, every reply learned once.",
    )
    dpo_max_pairs: int | None = opt(
        None,
        "Use at most N preference pairs for DPO (a seeded sample; the test split at most "
        "N/8): the reference log-probabilities then cost only what training uses.",
    )
    dpo_pair_sample: str = opt(
        "random",
        "How --dpo-max-pairs chooses: random (a seeded sample, the reasons in the share the "
        "data has them), or by-reason (each rejection reason, the first of a pair's, an even "
        "share: a rare reason such as identity_miss is used whole, the common ones split "
        "what is left).",
        choices=["random", "by-reason"],
    )
    dpo_copy_pairs: int = opt(
        0,
        "Add K self-copy pairs (a seeded sample; the test split K/8) to the pairs DPO trains "
        "on: at a character turn of the training dialogues, the reply kept against the "
        "latest earlier reply given again (reason self_copy). Turns that answer who the "
        "character is, and earlier replies that name it, make none.",
    )
    dpo_name_pairs: int = opt(
        0,
        "Add K name-swap pairs (a seeded sample; the test split K/8) to the pairs DPO trains "
        "on: at a character turn of the training dialogues whose reply introduces the "
        "character under its own name, that reply against the same reply under another "
        "training card's name (reason name_swap).",
    )
    beta: float = opt(0.1, "DPO beta: how far the policy may move from the reference.")
    dpo_sft_weight: float = opt(
        0.0, "DPO: weight of an NLL term on the chosen replies (RPO); 0 = plain DPO."
    )
    dpo_loss: str = opt(
        "sigmoid",
        "DPO's loss. sigmoid: DPO on the whole replies' log-probabilities; ftpo: a preference "
        "between the chosen and the rejected token at the first token where the replies "
        "differ, on logits, the rest of the vocabulary there held to the reference (the "
        "antislop paper's FTPO; --beta does not apply).",
        choices=["sigmoid", "ftpo"],
    )
    dpo_shared_prefix: bool = opt(
        False,
        "sigmoid DPO: run each pair's shared context once (one packed row: context, chosen "
        "reply, rejected reply, each reply attending to the context only); the same "
        "log-probabilities to float rounding, less compute.",
    )
    ftpo_margin: float = opt(
        2.0, "ftpo: logit gap (chosen - rejected) past which a pair stops pulling."
    )
    ftpo_target_weight: float = opt(
        0.05, "ftpo: weight of the tether of the chosen and rejected logits to the reference."
    )
    ftpo_nontarget_weight: float = opt(
        0.4, "ftpo: weight of the tether of every other logit to the reference."
    )
    ul_weight: float = opt(
        0.0,
        "Sequence-level unlikelihood (Welleck et al. 2019): weight of a term that samples the "
        "model's greedy reply to a context of the training dialogues and pushes down the "
        "tokens that repeat a 4-gram of that reply or of earlier character turns; added to "
        "the loss of every stage (SFT and DPO). 0 = off.",
    )
    ul_every: int = opt(
        1, "Unlikelihood: add the term to every Nth micro-batch (each costs a sampled reply)."
    )
    ul_tokens: int = opt(48, "Unlikelihood: most tokens in a sampled reply.")
    eval_steps: int = opt(
        50, "Evaluate on the test split every N optimizer steps (0 = at the end)."
    )
    save_steps: int = opt(
        10,
        "Checkpoint every N optimizer steps (and at each stage's end); `--resume` "
        "continues from the newest.",
    )
    keep_checkpoints: int = opt(2, "Checkpoints kept (the newest).")
    resume: bool = opt(False, "Continue from the newest checkpoint in --out.")
    merge: bool = opt(False, "Also write the base model with the adapter merged in (<out>/merged).")
    dtype: str = opt(
        "auto",
        "Training dtype: auto (bf16 where the hardware has it), bfloat16, float32.",
        choices=["auto", "bfloat16", "float32"],
    )
    gradient_checkpointing: bool = opt(
        False, "Recompute activations in the backward pass (less memory, about 30% slower)."
    )
    seed: int = opt(0, "Seed of the adapter init, data order and dropout.")
    lora: LoraSettings = section(LoraSettings)

    def validate(self) -> None:
        """Fail on settings no run can use, before anything loads."""
        if not self.data:
            raise RolegenError("no --data given: pass a run folder or its dataset/ folder")
        at_least(self, 1, "batch_size", "gradient_accumulation", "max_length")
        # --max-steps 0 would silently mean "the epochs" (None does), and a negative one
        # failed only after an untrained adapter had been written.
        at_least(self, 1, "max_steps", "dpo_max_pairs")
        at_least(
            self,
            0,
            "eval_steps",
            "save_steps",
            "keep_checkpoints",
            "dpo_copy_pairs",
            "dpo_name_pairs",
        )
        if self.max_steps is None and (self.epochs <= 0 or self.dpo_epochs <= 0):
            raise RolegenError("--epochs and --dpo-epochs must be above 0 (or give --max-steps)")
        if self.lora.r < 1:
            raise RolegenError("--lora-r must be at least 1")
        at_least(self, 1, "ul_every", "ul_tokens")
        if self.ul_weight < 0:
            raise RolegenError(f"--ul-weight must be 0 (off) or more, got {self.ul_weight}")
        if self.ftpo_margin <= 0 or min(self.ftpo_target_weight, self.ftpo_nontarget_weight) < 0:
            raise RolegenError("--ftpo-margin must be above 0 and the --ftpo-*-weight 0 or more")
        if self.init_adapter and self.out:
            init, out = (Path(p).expanduser().resolve() for p in (self.init_adapter, self.out))
            if init == out:
                raise RolegenError(
                    "--init-adapter and --out are the same folder: the new adapter would "
                    "overwrite the one it starts from; train into another --out"
                )
        if self.dpo_loss == "ftpo" and self.dpo_sft_weight:
            raise RolegenError(
                "--dpo-sft-weight needs the whole chosen reply; --dpo-loss ftpo reads one token "
                "of it: use one or the other"
            )
