"""vLLM-CPU's recommended set-up, measured on and off: which allocator and OpenMP runtime
`rolegen generate` should run under on this machine.

vLLM's CPU guide asks for libtcmalloc (and, on x86, Intel's libiomp5) in LD_PRELOAD; it
warns when they are absent, and by itself preloads only torch's libgomp. Each variant
runs the same seeded generate (vLLM, the embedded model, checks on, the user simulator
on) in a fresh process with its LD_PRELOAD, and reports:
- generated tokens/s (model load excluded), and that as a fraction of the decode limit
  of `bench/machine.py` measured in this run, at the batch and a context of 1,024, and of
  the machine limit (the lower of that and the compute limit of the run's own tokens:
  the ones generated and the prompt tokens not read from the prefix cache);
- the CPU time of the run's processes, and the share of it spent in the kernel (system
  time: page faults and frees of a busy allocator show up there).

`--variants` picks among them, and two more run rolegen's top-p plugin
(`rolegen/generation/engines/vllm_sampling.py`) against vLLM's own sort:
`--variants 'default,fast top-p' --out bench/results/top_p.json`. Two more run vLLM's
engine in rolegen's process (its default on a CPU) and in processes of its own:
`--variants 'in process,engine processes' --out bench/results/in_process.json`.

The variants run in turn and the default runs again at the end, so that drift of the
machine over the run shows as the difference between its two runs. A variant whose
library is not installed is reported absent, not run:
- tcmalloc: Debian's `libtcmalloc-minimal4`;
- jemalloc: Debian's `libjemalloc2`;
- iomp5: PyPI's `intel-openmp` (its `lib/libiomp5.so` in the environment).

    python bench/preload_bench.py [--dialogues 32] [--turns 6]

Writes bench/results/preload.json and prints a table. Run it alone: two cores shared
with anything else slow vLLM-CPU to a third.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIBDIR = Path("/usr/lib/x86_64-linux-gnu")
IOMP = Path(sys.prefix) / "lib" / "libiomp5.so"
TCMALLOC = LIBDIR / "libtcmalloc_minimal.so.4"
# vLLM's own top-p (a sort of the vocabulary) or rolegen's (engines/vllm_sampling.py)
VLLM_TOP_P = {"ROLEGEN_VLLM_TOP_P": "0"}
FAST_TOP_P = {"ROLEGEN_VLLM_TOP_P": "1"}
IN_PROCESS = "VLLM_ENABLE_V1_MULTIPROCESSING"
# name -> (libraries to preload, environment)
VARIANTS = {
    "default": ([], VLLM_TOP_P),
    "tcmalloc": ([TCMALLOC], VLLM_TOP_P),
    "jemalloc": ([LIBDIR / "libjemalloc.so.2"], VLLM_TOP_P),
    "tcmalloc + iomp5": ([TCMALLOC, IOMP], VLLM_TOP_P),
    "fast top-p": ([], FAST_TOP_P),
    "fast top-p + tcmalloc": ([TCMALLOC], FAST_TOP_P),
    # rolegen's set-up (fast top-p) with vLLM's engine core and worker in rolegen's process
    # (its default on a CPU) or in the two processes of their own that vLLM spawns
    "in process": ([], {**FAST_TOP_P, IN_PROCESS: "0"}),
    "engine processes": ([], {**FAST_TOP_P, IN_PROCESS: "1"}),
}

_CHILD = """
import dataclasses, json, sys, time
from pathlib import Path
sys.path.insert(0, {bench!r})
from generate_bench import _config
from rolegen.recipes.generate import run_generate
out = Path({out!r})
cfg = _config(out, {dialogues}, {turns}, 96, "vllm", batch={dialogues})
cfg = dataclasses.replace(cfg, check=True)
summary = run_generate(cfg, echo=lambda s: None)
manifest = json.loads((out / "manifest.json").read_text())
t, n = manifest["timings"], manifest["tokens"]
print("RESULT " + json.dumps({{"tokens": summary.generated_tokens,
    "seconds": t["generate_seconds"], "load_seconds": t["engine_load_seconds"],
    "prompt": n["prompt"], "cached": n.get("prompt_cached", 0)}}))
"""


def run_variant(libs: list[Path], extra_env: dict, dialogues: int, turns: int) -> dict:
    env = {**os.environ, **extra_env}
    env.pop("LD_PRELOAD", None)
    if libs:
        env["LD_PRELOAD"] = ":".join(map(str, libs))
    with tempfile.TemporaryDirectory() as tmp:
        code = _CHILD.format(
            bench=str(ROOT / "bench"), out=f"{tmp}/run", dialogues=dialogues, turns=turns
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"variant {libs} {extra_env} failed:\n{proc.stderr[-3000:]}")
    r = json.loads(lines[-1][7:])
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    return {
        "generated_tokens": r["tokens"],
        "generate_seconds": round(r["seconds"], 1),
        "engine_load_seconds": round(r["load_seconds"], 1),
        "tokens_per_second": round(r["tokens"] / r["seconds"], 1),
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(user + system, 1),
        "system_share": round(system / (user + system), 3),
        "prompt_tokens": r["prompt"],
        "prompt_tokens_cached": r["cached"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dialogues", type=int, default=32)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated, from: {', '.join(VARIANTS)} (default: all)",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "preload.json"))
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "bench"))
    from machine import limits, run_limits

    limit = limits(batch=args.dialogues, context=1024)
    runs: dict[str, dict] = {}
    chosen = args.variants.split(",")
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown --variants {unknown}; choose from {list(VARIANTS)}")
    order = [*chosen, f"{chosen[0]} (again)"]
    for name in order:
        libs, extra_env = VARIANTS[name.replace(" (again)", "")]
        missing = [str(p) for p in libs if not p.is_file()]
        if missing:
            runs[name] = {"absent": missing}
            print(f"{name:20} absent: {', '.join(missing)}", flush=True)
            continue
        runs[name] = run_variant(libs, extra_env, args.dialogues, args.turns)
        r = runs[name]
        r["fraction_of_decode_limit"] = round(
            r["tokens_per_second"] / limit["decode_limit"]["tokens_per_s"], 3
        )
        r["limits"] = run_limits(
            limit, r["generated_tokens"], r.pop("prompt_tokens"), r.pop("prompt_tokens_cached")
        )
        r["fraction_of_machine_limit"] = round(
            r["tokens_per_second"] / r["limits"]["machine_limit_tokens_per_s"], 3
        )
        print(f"{name:20} {runs[name]}", flush=True)

    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpus": os.cpu_count()},
        "settings": vars(args),
        "limits": limit,
        "runs": runs,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\n{'variant':20}{'tokens/s':>10}{'of decode':>10}{'of machine':>11}{'bound':>9}"
        f"{'prompt cached':>14}{'system share':>14}{'load s':>8}"
    )
    for name, r in runs.items():
        if "absent" in r:
            print(f"{name:20}{'absent':>10}")
            continue
        lim = r["limits"]
        cached = lim["prompt_tokens_cached"] / max(1, lim["prompt_tokens"])
        print(
            f"{name:20}{r['tokens_per_second']:>10.1f}{r['fraction_of_decode_limit']:>10.3f}"
            f"{r['fraction_of_machine_limit']:>11.3f}{lim['bound']:>9}{cached:>14.3f}"
            f"{r['system_share']:>14.3f}{r['engine_load_seconds']:>8.1f}"
        )
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
