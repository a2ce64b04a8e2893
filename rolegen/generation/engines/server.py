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
A server is input like any file: its answers are read with a size cap and checked field
by field (answers.py). Retries are rolegen's own (the client's are off), so that what is
retried, for how long, and what the error says are decided here:
- a try gets `request_timeout` seconds for the whole answer, body included (a server that
  drips one byte a second is a timeout too);
- 429, 408, 409, 5xx, a reset or refused connection and a timeout are retried with
  exponential backoff (a 429's or 503's Retry-After is honoured, up to a minute), at most
  `max_retries` times and within `RETRY_BUDGET` x `request_timeout` seconds in all;
- any other 4xx is the request's own fault and is not retried, and a malformed answer
  is not either (a server that answers the wrong shape does so every time).
When a request fails for good, the others in flight are cancelled and the run stops with
a one-line error naming the server (without credentials) and what was wrong; everything
finished so far is on disk and the manifest says `interrupted` (`--resume` goes on).
A server that answers as another model than the one asked for is warned of once and
named in the manifest (`answered_as`).

Not handled: no-repeat n-grams (a logits processor inside the engine; a server has
none), LoRA adapters (serve the adapter from the server: `--served-model` names it).
The API key is read from the environment variable `api_key_env` and never stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import random
import sys
import time
from pathlib import Path

from rolegen.bounded import excerpt
from rolegen.errors import RolegenError
from rolegen.generation.engines.answers import (
    CHARS_PER_TOKEN,
    MAX_BODY_BYTES,
    Answer,
    parse_answer,
    parse_models,
)
from rolegen.generation.engines.base import Completion, EngineOptions, Request
from rolegen.urls import public_url

RETRY_BUDGET = 3  # a request gives up after this many request_timeouts in all
RETRY_AFTER_MAX = 60.0  # seconds; a longer Retry-After is waited this long at most
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 8.0  # seconds, doubling per retry (with jitter)


def retried(status: int) -> bool:
    """Statuses worth another try: rate limits, timeouts, conflicts and server faults."""
    return status in (408, 409, 429) or status >= 500


def _retry_after(headers) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    try:
        seconds = float(value)
    except (TypeError, ValueError):  # absent, or an HTTP date: the backoff decides
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX) if seconds == seconds else None


def _transport_errors() -> tuple[type[BaseException], ...]:
    """What the HTTP layer raises while a body streams in (a reset, a broken chunk): the
    `openai` client's own httpx and, where it uses it, the classic one."""
    found = []
    for name in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(importlib.import_module(name).HTTPError)
    return tuple(found)


class _Retry(Exception):
    """A try that failed in a way worth another: `reason` for the message, `wait` when
    the server said how long (Retry-After)."""

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.reason, self.wait = reason, wait


class OpenAIEngine:
    name = "openai"

    def __init__(self, model_path: Path, options: EngineOptions):
        import openai

        from rolegen.models.checkpoints import load_tokenizer

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
        self._openai = openai
        self._transport = _transport_errors()
        self.answered_as: set[str] = set()  # other model names the server answered as
        self.client = openai.AsyncOpenAI(
            base_url=options.base_url,
            api_key=key,
            timeout=options.request_timeout,
            max_retries=0,  # rolegen retries (see the module docstring)
        )
        try:
            self.served = self._run(self._models())
        except BaseException:
            self.close()
            raise
        ids = [m["id"] for m in self.served]
        self.model = options.served_model or ids[0]
        if self.model not in ids:
            self.close()
            raise RolegenError(f"--served-model {self.model}: {self.url} serves {', '.join(ids)}")

    def describe(self) -> dict:
        """What the manifest records: the server (without credentials), the model asked
        for, what the server reported of itself and any other model it answered as."""
        info = {
            "server": self.url,
            "served_model": self.model,
            "request_mode": self.options.request_mode,
            "server_models": self.served,
        }
        if self.answered_as:
            info["answered_as"] = sorted(self.answered_as)
        return info

    def _run(self, coroutine):
        return self._loop.run_until_complete(coroutine)

    async def _models(self) -> list[dict]:
        raw = await self._call(
            "GET /models", lambda: self.client.models.with_streaming_response.list()
        )
        return parse_models(raw, self.url)

    async def _call(self, what: str, send) -> bytes:
        """The body of one request, `send()` opening its streamed response, with rolegen's
        retries (module docstring); a RolegenError when it fails for good."""
        timeout = self.options.request_timeout
        start = time.monotonic()
        deadline = start + RETRY_BUDGET * timeout
        tries = 0
        while True:
            tries += 1
            left = deadline - time.monotonic()
            try:
                return await asyncio.wait_for(self._try(what, send), min(timeout, max(left, 0.001)))
            except _Retry as e:
                reason, wait = e.reason, e.wait
            except (TimeoutError, asyncio.TimeoutError):
                reason, wait = f"no whole answer within {timeout:g} s (--request-timeout)", None
            if wait is None:
                wait = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (tries - 1)) * random.uniform(0.8, 1.2)
            spent = time.monotonic() - start
            if tries > self.options.max_retries or time.monotonic() + wait >= deadline:
                raise RolegenError(
                    f"server {self.url}: {what} failed after {tries} "
                    f"{'try' if tries == 1 else 'tries'} in {spent:.1f} s: {reason}"
                )
            await asyncio.sleep(wait)

    async def _try(self, what: str, send) -> bytes:
        openai = self._openai
        try:
            async with send() as response:
                size = response.headers.get("content-length", "")
                if size.isdigit() and int(size) > MAX_BODY_BYTES:
                    raise self._too_large(what)
                chunks, total = [], 0
                async for chunk in response.iter_bytes():
                    total += len(chunk)
                    if total > MAX_BODY_BYTES:
                        raise self._too_large(what)
                    chunks.append(chunk)
                return b"".join(chunks)
        except openai.APIStatusError as e:
            detail = excerpt(str(e.message).splitlines()[0] if e.message else "")
            if retried(e.status_code):
                wait = _retry_after(e.response.headers)
                raise _Retry(f"HTTP {e.status_code} {detail}", wait) from None
            raise RolegenError(
                f"server {self.url}: {what} answered HTTP {e.status_code}, not retried (the "
                f"server refused the request itself): {detail}"
            ) from None
        except openai.APITimeoutError:
            raise _Retry(f"no answer within {self.options.request_timeout:g} s") from None
        except openai.APIConnectionError as e:
            cause = e.__cause__ or e
            raise _Retry(f"connection failed ({type(cause).__name__})") from None
        except self._transport as e:  # the connection broke while the body came in
            raise _Retry(f"the answer broke off ({type(e).__name__})") from None

    def _too_large(self, what: str) -> RolegenError:
        return RolegenError(
            f"server {self.url}: {what} answered more than {MAX_BODY_BYTES >> 20} MB (a server "
            "that ignores max_tokens?); refused"
        )

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

        tasks = [asyncio.ensure_future(one(r)) for r in requests]
        try:
            # the first request that fails for good stops the batch: the rest are cancelled
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in tasks:
                if t.done() and t.exception() is not None:
                    raise t.exception()
            return [t.result() for t in tasks]
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

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
        mode = self.options.request_mode
        if mode == "chat":
            if not r.messages:
                raise RolegenError("--request-mode chat: the request carries no messages")
            create = self.client.chat.completions.with_streaming_response.create
            kwargs = dict(messages=r.messages, extra_body=extra or None, **common)
            what = "POST /chat/completions"
        else:
            create = self.client.completions.with_streaming_response.create
            kwargs = dict(prompt=r.prompt_ids, extra_body=extra or None, **common)
            what = "POST /completions"
        raw = await self._call(what, lambda: create(**kwargs))
        answer = parse_answer(raw, self.url, mode, max_chars=r.max_tokens * CHARS_PER_TOKEN)
        self._note_model(answer)
        tokens = answer.completion_tokens
        if tokens is None:
            tokens = len(self.tokenizer(answer.text).input_ids)
        return Completion(
            text=answer.text,
            n_tokens=tokens,
            finish_reason=answer.finish_reason,
            cached_tokens=answer.cached_tokens,
        )

    def _note_model(self, answer: Answer) -> None:
        """A server behind a proxy may answer as another model than the one asked for:
        warned of once per name, and recorded for the manifest."""
        name = answer.model
        if name is None or name == self.model or name in self.answered_as:
            return
        if len(self.answered_as) < 10:
            self.answered_as.add(name[:200])
            print(
                f"warning: server {self.url} answered as model {excerpt(name)}, not "
                f"{self.model} (--served-model); the manifest records it",
                file=sys.stderr,
            )

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._loop.run_until_complete(self.client.close())
        finally:
            self._loop.close()
