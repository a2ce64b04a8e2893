"""The model judge's settings (`JudgeConfig`), one section shared by `rolegen eval` (verdicts
beside the pattern checks) and `rolegen filter` (verdicts that reject turns); judge.py
runs it."""

from __future__ import annotations

from dataclasses import dataclass

from rolegen.config.options import opt
from rolegen.errors import RolegenError
from rolegen.urls import check_url

# The judge's faults, in the order they are reported; each is a metric row field and a
# filter reason of the same name, judge_<fault> (judge.py says what each means).
FAULTS = ("out_of_character", "wrong_identity", "acts_for_user", "helper_voice")
REASONS = tuple(f"judge_{fault}" for fault in FAULTS)

# Environment variables read for the judge's API key when --judge-api-key-env is not given,
# first set one wins; none set: no key (a local server takes any).
DEFAULT_KEY_VARIABLES = ("ROLEGEN_JUDGE_API_KEY", "OPENAI_API_KEY")


@dataclass
class JudgeConfig:
    """A strong model behind an OpenAI-compatible server that reads each character reply
    with the card and the last turns and answers four yes/no questions (judge.py)."""

    judge_url: str | None = opt(
        None,
        "Model judge: the API root of an OpenAI-compatible server (vllm serve, llama.cpp's "
        "server, TGI, Ollama, a hosted API), e.g. http://127.0.0.1:8000/v1. Each reply is "
        "asked: in character, wrong identity, acting for the user, helper voice. Default: no "
        "judge.",
    )
    judge_model: str | None = opt(
        None, "Model judge: the model name the server knows. Default: the first it lists."
    )
    judge_api_key_env: str | None = opt(
        None,
        "Model judge: the environment variable that holds the API key (the key is never "
        "written anywhere). Default: ROLEGEN_JUDGE_API_KEY, else OPENAI_API_KEY, else no key.",
    )
    judge_context_turns: int = opt(
        4, "Model judge: earlier messages (user and character) shown before the reply."
    )
    judge_concurrency: int = opt(16, "Model judge: requests in flight at once.")
    judge_timeout: float = opt(120.0, "Model judge: seconds one request may take.")
    judge_max_retries: int = opt(
        2, "Model judge: retries of a request that fails (429, 5xx, timeout, connection)."
    )
    judge_max_tokens: int = opt(
        256, "Model judge: most tokens in an answer (room for a model that thinks first)."
    )

    @property
    def enabled(self) -> bool:
        return bool(self.judge_url)

    def validate(self) -> None:
        if self.judge_model and not self.judge_url:
            raise RolegenError("--judge-model needs --judge-url (the server that serves it)")
        if self.judge_url:
            check_url(self.judge_url, "--judge-url")
        if self.judge_context_turns < 0:
            raise RolegenError("--judge-context-turns must be 0 or more")
        if self.judge_concurrency < 1 or self.judge_max_tokens < 1:
            raise RolegenError("--judge-concurrency and --judge-max-tokens must be at least 1")
        if self.judge_timeout <= 0 or self.judge_max_retries < 0:
            raise RolegenError("--judge-timeout must be above 0, --judge-max-retries 0 or more")
