"""An OpenAI-compatible server as the engine: `vllm serve`, llama.cpp's server, TGI,
Ollama or a hosted API, through the official `openai` client.

Two request modes:
- `completions` (default): the prompt rolegen rendered, sent as its token ids, so a
  base model and the format templates work exactly as in-process and the text is what
  `rolegen train` renders. The server must serve a model with the same tokenizer as
  `--model` (rolegen's tokenizer and templates come from there).
- `chat`: the dialogue as messages; the server applies its own chat template (for
  servers that only have chat endpoints). The text then follows the server's template.

One turn's batch goes out as concurrent requests, at most `max_concurrency` at a time.
The client retries 429, 5xx, connection errors and timeouts with exponential backoff
(`max_retries`); when a request still fails the run stops with a one-line error that
names the server, and everything finished so far is on disk (`--resume` goes on).

Not handled: no-repeat n-grams (a logits processor inside the engine; a server has
none), LoRA adapters (serve the adapter from the server: `--served-model` names it).
The API key is read from the environment variable `api_key_env` and never stored.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from rolegen.engines.base import Completion, EngineOptions, Request
from rolegen.errors import RolegenError
from rolegen.urls import public_url


class OpenAIEngine:
    name = "openai"

    def __init__(self, model_path: Path, options: EngineOptions):
        import openai

        from rolegen.models import load_tokenizer

        if not options.base_url:
            raise RolegenError("--engine openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        self.url = public_url(options.base_url)
        key = "EMPTY"  # local servers take any key
        if options.api_key_env:
            key = os.environ.get(options.api_key_env, "")
            if not key:
                raise RolegenError(
                    f"--api-key-env {options.api_key_env}: that environment variable is empty"
                )
        self.options = options
        self.tokenizer = load_tokenizer(model_path)
        self._loop = asyncio.new_event_loop()
        self._errors = (openai.APIError, openai.APIConnectionError, openai.APITimeoutError)
        self.client = openai.AsyncOpenAI(
            base_url=options.base_url,
            api_key=key,
            timeout=options.request_timeout,
            max_retries=options.max_retries,
        )
        self.served = self._run(self._models())
        self.model = options.served_model or self.served[0]["id"]
        if self.model not in [m["id"] for m in self.served]:
            served = ", ".join(m["id"] for m in self.served)
            raise RolegenError(f"--served-model {self.model}: {self.url} serves {served}")

    def describe(self) -> dict:
        """What the manifest records: the server (without credentials), the model asked
        for and what the server reported of itself."""
        return {
            "server": self.url,
            "served_model": self.model,
            "request_mode": self.options.request_mode,
            "server_models": self.served,
        }

    def _run(self, coroutine):
        try:
            return self._loop.run_until_complete(coroutine)
        except self._errors as e:
            detail = str(e).splitlines()[0][:200] if str(e) else ""
            raise RolegenError(
                f"server {self.url} failed after {self.options.max_retries} retries: "
                f"{type(e).__name__}{': ' + detail if detail else ''}"
            ) from None

    async def _models(self) -> list[dict]:
        page = await self.client.models.list()
        models = [m.model_dump(exclude_none=True) for m in page.data]
        if not models:
            raise RolegenError(f"server {self.url} serves no model (GET /models is empty)")
        return models

    def generate(self, requests: list[Request]) -> list[Completion]:
        if any(r.no_repeat_ngram for r in requests):
            raise RolegenError(
                "--engine openai: no-repeat n-grams need a logits processor inside the engine; "
                "use --engine vllm or hf for those systems"
            )
        return self._run(self._all(requests))

    async def _all(self, requests: list[Request]) -> list[Completion]:
        gate = asyncio.Semaphore(self.options.max_concurrency)

        async def one(r: Request) -> Completion:
            async with gate:
                return await self._one(r)

        return list(await asyncio.gather(*(one(r) for r in requests)))

    async def _one(self, r: Request) -> Completion:
        common = dict(
            model=self.model,
            max_tokens=r.max_tokens,
            temperature=r.temperature,
            top_p=r.top_p,
            frequency_penalty=r.frequency_penalty,
            presence_penalty=r.presence_penalty,
            stop=list(r.stop) or None,
            seed=r.seed,
        )
        # not in the OpenAI API; vLLM and llama.cpp take it, sent only when it is on
        extra = {"repetition_penalty": r.repetition_penalty} if r.repetition_penalty != 1 else {}
        if self.options.request_mode == "chat":
            if not r.messages:
                raise RolegenError("--request-mode chat: the request carries no messages")
            resp = await self.client.chat.completions.create(
                messages=r.messages, extra_body=extra or None, **common
            )
            choice = resp.choices[0]
            text = choice.message.content or ""
        else:
            resp = await self.client.completions.create(
                prompt=r.prompt_ids, extra_body=extra or None, **common
            )
            choice = resp.choices[0]
            text = choice.text
        tokens = resp.usage.completion_tokens if resp.usage else len(self.tokenizer(text).input_ids)
        return Completion(text=text, n_tokens=tokens, finish_reason=choice.finish_reason or "stop")

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self.client.close())
        finally:
            self._loop.close()
