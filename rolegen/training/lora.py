"""The model a run trains: a base causal LM with PEFT LoRA adapters on its linear layers.

Supports: any transformers causal LM whose projections are `torch.nn.Linear` (the
`--target-module` names are checked against the model); bf16 or fp32 weights
(`training_dtype`); gradient checkpointing; packed rows through the
`rolegen_packed` attention (packed_attention.py); adapters that start from an
earlier adapter's weights (`--init-adapter`, the pipeline's later rounds).

Non-goals: quantized bases (QLoRA), DoRA and full fine-tuning; loading an adapter
to serve it (`adapters.py`); starting from an adapter of another rank or on other
modules (no resizing).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rolegen.config import TrainConfig
from rolegen.errors import RolegenError
from rolegen.models.hardware import cpu_dtype


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
    return cpu_dtype()  # bf16 is emulated on other CPUs


def load_lora_model(model_path: Path, cfg: TrainConfig, dtype: torch.dtype):
    """The base model at `model_path` in `dtype`, with LoRA adapters (`cfg.lora`): fresh,
    or holding the weights of `cfg.init_adapter`."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rolegen.training import packed_attention

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
    if cfg.init_adapter:
        _load_init_adapter(model, Path(cfg.init_adapter).expanduser())
    if dtype == torch.bfloat16:
        # PEFT casts each adapter's input to the adapters' fp32 and autocast casts it back:
        # two copies of every activation per adapted layer (17% of a CPU step). Under
        # autocast (losses.token_logps) the bf16 input can go straight in.
        for module in model.modules():
            if hasattr(module, "lora_A"):
                module.cast_input_dtype_enabled = False
    return model


def check_init_adapter(path: Path, cfg: TrainConfig) -> None:
    """Refuse an `--init-adapter` whose LoRA settings are not the run's: a rank or module
    set that differs would leave part of the adapter behind, or train part of the new one
    from zero, without a word. The message names only the settings that differ, with
    the flags that match the adapter. (Dropout is a training setting and may differ.)"""
    saved = json.loads((path / "adapter_config.json").read_text())
    r, alpha = saved.get("r"), float(saved.get("lora_alpha") or 0)
    modules = sorted(_as_list(saved.get("target_modules")))
    settings = (  # (the adapter's, the run's, how one reads, the flags that match it)
        (r, cfg.lora.r, "r={}".format, f"--lora-r {r}"),
        (alpha, float(cfg.lora.alpha), "alpha {:g}".format, f"--lora-alpha {alpha:g}"),
        (
            modules,
            sorted(cfg.lora.target_modules),
            lambda v: "modules " + ", ".join(v),
            " ".join(f"--target-module {m}" for m in modules),
        ),
    )
    differ = [s for s in settings if s[0] != s[1]]
    if differ:
        theirs = " and ".join(show(t) for t, _, show, _ in differ)
        ours = " and ".join(show(o) for _, o, show, _ in differ)
        flags = " ".join(f for *_, f in differ)
        raise RolegenError(
            f"--init-adapter {path}: it has {theirs}, this run trains {ours}: pass {flags} "
            "to train on from it"
        )


def _load_init_adapter(model, path: Path) -> None:
    """Put the weights of the adapter at `path` (settings checked: `check_init_adapter`)
    into `model`'s fresh LoRA layers, all of them."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(path / "adapter_model.safetensors"))
    expected = set(get_peft_model_state_dict(model))
    if set(weights) != expected:
        odd = sorted(set(weights) ^ expected)
        raise RolegenError(
            f"--init-adapter {path}: its weights do not match this model's LoRA layers "
            f"({len(odd)} differ, e.g. {odd[0]})"
        )
    set_peft_model_state_dict(model, weights)


def _as_list(modules) -> list[str]:
    """PEFT's `target_modules`: a list of names, or one name (or pattern) as a string."""
    return [modules] if isinstance(modules, str) else list(modules or [])
