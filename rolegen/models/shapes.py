"""The shapes a checkpoint's config promises against the shapes its weights hold, read
before anything loads.

- A model folder whose `config.json` does not describe its weights (an edited
  `intermediate_size`, a config copied from a sibling model) stops transformers with a
  RuntimeError about `ignore_mismatched_sizes` after a table on stdout; a config with
  more layers than the weights fills the missing ones with random weights without a
  word. `check_model_shapes` names the first tensor that disagrees and the config field
  behind it, in one line.
- An adapter whose `adapter_config.json` gives another rank than its weights, or whose
  weights were trained on a base of other widths, stops PEFT with one size-mismatch
  line per layer. `check_adapter_shapes` names the setting or the module instead.

Shapes come from safetensors headers (`safetensors_header`, which checks each against
its file); `.bin` files are pickles and are not read here. The model's expected shapes
come from its config built on PyTorch's meta device (no memory, no weights).
Non-goals (not checked): architectures that need remote code to build, quantized
checkpoints (packed weights have other shapes), LoRA on embeddings (`lora_embedding_*`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from rolegen.errors import RolegenError

# Config fields a weight's dimension is made of, in the order they are named.
_SHAPE_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
)
# The config field behind each dimension of a LLaMA-family weight ([out, in] for a
# projection): names the field where two fields happen to hold the same number.
_HEADS, _KV_HEADS = "num_attention_heads x head_dim", "num_key_value_heads x head_dim"
_DIMS = {
    "embed_tokens": ("vocab_size", "hidden_size"),
    "lm_head": ("vocab_size", "hidden_size"),
    "q_proj": (_HEADS, "hidden_size"),
    "k_proj": (_KV_HEADS, "hidden_size"),
    "v_proj": (_KV_HEADS, "hidden_size"),
    "o_proj": ("hidden_size", _HEADS),
    "gate_proj": ("intermediate_size", "hidden_size"),
    "up_proj": ("intermediate_size", "hidden_size"),
    "down_proj": ("hidden_size", "intermediate_size"),
}
_LAYER = re.compile(r"\.layers\.(\d+)\.")
_PEFT_PREFIX = "base_model.model."
_MAX_HEADER_BYTES = 100_000_000  # the safetensors format's own limit


def safetensors_header(path: Path) -> dict:
    """The JSON header of a safetensors file, checked against the file: its length fits,
    it parses to an object, and every tensor's bytes lie inside the file. Raises naming
    the file when not (a truncated download, a file of another format)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        n = int.from_bytes(fh.read(8), "little") if size >= 8 else -1
        if not 2 <= n <= min(size - 8, _MAX_HEADER_BYTES):
            raise RolegenError(
                f"{path}: not a safetensors file, or cut short (its header length {n} does "
                f"not fit the file's {size} bytes)"
            )
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise RolegenError(f"{path}: not a safetensors file (its header is not a JSON object)")
    data_bytes = size - 8 - n
    for name, entry in header.items():
        if name != "__metadata__" and not _tensor_entry_fits(entry, data_bytes):
            raise RolegenError(
                f"{path}: tensor '{name}' has a broken entry or lies past the end of the file "
                "(corrupt or cut short)"
            )
    return header


def _tensor_entry_fits(entry, data_bytes: int) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list):
        return False
    offsets = entry.get("data_offsets")
    return (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) for o in offsets)
        and 0 <= offsets[0] <= offsets[1] <= data_bytes
    )


def weight_shapes(folder: Path) -> dict[str, list[int]]:
    """Every tensor's shape over the folder's `*.safetensors` files (all shards)."""
    shapes = {}
    for file in sorted(Path(folder).glob("*.safetensors")):
        header = safetensors_header(file)
        shapes.update({k: v["shape"] for k, v in header.items() if k != "__metadata__"})
    return shapes


def _expected_shapes(path: Path):
    """(config object, {parameter name: shape}) of the model its config.json describes,
    built on the meta device; None when transformers cannot build it without remote code."""
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(path)
        if getattr(config, "quantization_config", None):
            return None
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except Exception:  # an architecture transformers does not know: loading will say so
        return None
    # named_parameters names a tied weight (lm_head on the embedding) once
    return config, {n: list(p.shape) for n, p in model.named_parameters()}


def _field_values(config) -> dict[str, int]:
    """The shape-making fields of a config (its text part), with the attention widths
    that are products of two of them."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    values = {f: getattr(text, f, None) for f in _SHAPE_FIELDS}
    values = {f: v for f, v in values.items() if isinstance(v, int) and not isinstance(v, bool)}
    heads, hidden = values.get("num_attention_heads"), values.get("hidden_size")
    head_dim = values.get("head_dim") or (hidden // heads if heads and hidden else None)
    if head_dim:
        for f in ("num_attention_heads", "num_key_value_heads"):
            if f in values:
                values[f"{f} x head_dim"] = values[f] * head_dim  # _HEADS, _KV_HEADS
    return values


def _blame(config, name: str, want: list[int], got: list[int]) -> str:
    """The config fields that make the dimensions of tensor `name` where `want` (the
    config's) and `got` (the weights') differ, e.g. "intermediate_size is 256, the
    weights say 128": the field a LLaMA weight's dimension is known to come from, else
    every field that holds the number."""
    values = _field_values(config)
    known = _DIMS.get(name.removesuffix(".weight").rsplit(".", 1)[-1], ())
    parts = []
    for i, (w, g) in enumerate(zip(want, got)):
        if w == g:
            continue
        if i < len(known) and values.get(known[i]) == w:
            fields = [known[i]]
        else:
            fields = [f for f, v in values.items() if v == w]
        parts.append(f"{' or '.join(fields) or 'a dimension'} is {w}, the weights say {g}")
    return "; ".join(parts) if parts else f"the config makes {len(want)} dimensions, not {len(got)}"


def check_model_shapes(path: Path) -> None:
    """Refuse a model folder whose config.json does not describe its safetensors weights,
    naming the first tensor that differs and the config field behind it."""
    shapes = weight_shapes(path)
    built = _expected_shapes(path) if shapes else None
    if built is None:
        return
    config, expected = built
    for name, want in expected.items():
        got = shapes.get(name)
        if got is not None and list(got) != want:
            raise RolegenError(
                f"{path}: config.json does not match the weights: tensor '{name}' is {got} in "
                f"the weights, {want} by the config ({_blame(config, name, want, got)})"
            )
    have, want_layers = _layer_count(shapes), _layer_count(expected)
    if have and want_layers and have != want_layers:
        raise RolegenError(
            f"{path}: config.json does not match the weights: num_hidden_layers is "
            f"{want_layers}, the weights hold {have} layers"
        )


def _layer_count(names) -> int:
    found = [int(m.group(1)) for n in names if (m := _LAYER.search(n))]
    return max(found) + 1 if found else 0


def check_adapter_shapes(
    adapter: Path, config: dict, model_path: Path, flag: str = "--adapter"
) -> None:
    """Refuse a PEFT LoRA adapter whose weights do not have the rank its
    adapter_config.json gives (`r`, or a `rank_pattern` value), or do not fit the
    widths of the base model's modules: what PEFT would stop on with a size mismatch
    per layer."""
    ranks = {config.get("r")} | set((config.get("rank_pattern") or {}).values())
    base = weight_shapes(model_path)
    base_layers = _layer_count(base)
    for key, shape in weight_shapes(adapter).items():
        part = next((p for p in (".lora_A.", ".lora_B.") if p in key), None)
        if part is None or len(shape) != 2:
            continue
        is_a = part == ".lora_A."
        rank = shape[0] if is_a else shape[1]
        if rank not in ranks:
            raise RolegenError(
                f"{flag} {adapter}: adapter_config.json gives r={config.get('r')}, but its "
                f"weights have rank {rank} ('{key}' is {shape}): the config and the weights "
                "come from different trainings"
            )
        module = key.split(part)[0].removeprefix(_PEFT_PREFIX)
        target = base.get(f"{module}.weight")
        if target is None:
            layer = _LAYER.search(f"{module}.")
            if layer and base_layers and int(layer.group(1)) >= base_layers:
                raise RolegenError(
                    f"{flag} {adapter}: it adapts '{module}', but {model_path} has "
                    f"{base_layers} layers: the adapter belongs to another base model"
                )
            continue
        width, theirs = (shape[1], target[1]) if is_a else (shape[0], target[0])
        if len(target) == 2 and width != theirs:
            side = "input" if is_a else "output"
            raise RolegenError(
                f"{flag} {adapter}: its '{module}' has {side} width {width}, the module in "
                f"{model_path} {theirs}: the adapter belongs to another base model"
            )
