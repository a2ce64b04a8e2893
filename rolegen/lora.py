"""The model a run trains: a base causal LM with PEFT LoRA adapters on its linear layers.

Supports: any transformers causal LM whose projections are `torch.nn.Linear` (the
`--target-module` names are checked against the model); bf16 or fp32 weights
(`training_dtype`); gradient checkpointing; packed rows through the
`rolegen_packed` attention (packed_attention.py).

Non-goals: quantized bases (QLoRA), DoRA and full fine-tuning; loading an adapter
to serve it (`adapters.py`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from rolegen.config import TrainConfig
from rolegen.errors import RolegenError


def training_dtype(option: str) -> torch.dtype:
    """The `--dtype` to train in: `auto` is bf16 where the hardware computes it natively
    (a GPU that supports it, a CPU with AMX or AVX-512 BF16), fp32 elsewhere."""
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
    """The base model at `model_path` in `dtype`, with fresh LoRA adapters (`cfg.lora`)."""
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
        # autocast (losses.token_logps) the bf16 input can go straight in.
        for module in model.modules():
            if hasattr(module, "lora_A"):
                module.cast_input_dtype_enabled = False
    return model
