"""What every engine takes and gives: requests, completions, the `Engine` protocol and
the options an engine is built with. The implementations (`vllm.py`, `hf.py`) import
this module; the package's `load_engine` picks one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Request:
    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 0.8
    top_p: float = 0.95
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0  # OpenAI-style, on the reply's own tokens
    presence_penalty: float = 0.0
    no_repeat_ngram: int = 0  # ban repeating any n-gram of the reply (0 = off)
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    lora: bool = True  # use the engine's adapter, if it has one (False: the base model)
    messages: list[dict] | None = None  # the same prompt as chat messages (a server's chat mode)
    group: str = ""  # requests of two groups never share a batch (transformers; eval prompts)


@dataclass
class Completion:
    text: str
    n_tokens: int
    finish_reason: str  # "stop" (eos or a stop string) or "length"
    cached_tokens: int = 0  # prompt tokens read from the engine's prefix cache, where it says


class Engine(Protocol):
    name: str
    tokenizer: object

    def generate(self, requests: list[Request]) -> list[Completion]: ...

    def close(self) -> None: ...


@dataclass
class EngineOptions:
    seed: int = 0
    max_model_len: int = 2048
    dtype: str = "auto"  # auto: bf16 where the hardware has it natively, else fp32
    eos_token_ids: list[int] = field(default_factory=list)
    batch_size: int = 64  # hf engine: rows per generate call
    kv_cache_gib: float | None = None  # vllm on CPU: KV cache GiB (None: the environment's, else 4)
    gpu_memory_utilization: float = 0.85  # vllm on GPU
    enforce_eager: bool = True  # vllm: skip torch.compile (a slow start for short runs)
    lora_path: str | None = None  # a PEFT adapter served as LoRA requests (vllm) or merged (hf)
    max_lora_rank: int = 16  # vllm: one of the ranks it accepts, >= the adapter's
    no_repeat_ngram: bool = False  # vllm: register the no-repeat n-gram logits processor
    tensor_parallel_size: int = 1  # vllm: GPUs one engine spans
    distributed_executor_backend: str | None = None  # vllm: "ray" inside a Ray replica
    base_url: str | None = None  # openai: the server's API root, e.g. http://host:8000/v1
    api_key_env: str | None = None  # openai: the environment variable holding the key
    served_model: str | None = None  # openai: the model name the server knows
    request_mode: str = "completions"  # openai: completions (token ids) or chat (messages)
    max_concurrency: int = 64  # openai: requests in flight at once
    request_timeout: float = 120.0  # openai: seconds a try may take, body included
    max_retries: int = 5  # a server's retries, with exponential backoff (engines/server.py)
