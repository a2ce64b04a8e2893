"""Where a generate's time goes: a sampling profile (py-spy) of the pipeline's generate
stage at a small size, every process included (on a CPU, vLLM's engine runs in rolegen's
process; elsewhere in processes of its own), with the samples sorted into the parts of the
loop.

The child runs the pipeline's generate settings (`config/pipeline_stages.py`: scripted
users, 4 candidates drawn together, frequency-penalty distillation with a plain negative
per turn, checks on) on the shipped personas, with vLLM and the embedded model. py-spy
samples each process's Python stacks `--rate` times a second while it runs on a CPU
(idle threads are not sampled), so a part's share is its share of the CPU time spent,
and the CPU seconds per wall second show how much of the two cores the run kept busy.

Parts, by the innermost frame that names one (in this order):
- startup: imports and model or engine loading;
- engine forward: vLLM's model runner (the forward pass and sampling);
- engine scheduler and I/O: the engine core's other work (scheduling, output queues);
- checks: `rolegen/checks/` (in-loop checks, embedder);
- prompts: rendering prompts (`generation/prompts.py`, templates, Jinja2) and tokenizing;
- replies: cleaning and judging replies (`generation/replies.py`, `dialogue_state.py`);
- engine client: this process's side of vLLM (requests in, outputs out);
- turn loop: the rest of `generation/`;
- other.

    python bench/generate_profile.py [--dialogues 8] [--turns 6] [--rate 50]

Writes bench/results/generate_profile.json and prints a table. Needs py-spy (`pip install
py-spy`, beside this Python or on PATH) and ptrace rights (root here). Run it alone.

Not finishing since vLLM's engine runs in rolegen's process on a CPU (2026-12-07): a
4 x 2 run had not ended after 7 min under py-spy, a 4 x 3 run with `--nonblocking` not
after 7 min either, while a plain generate of 2 x 2 under `py-spy --nonblocking` ended.
Its last results (`generate_profile*.json`) are of the engine in its own processes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "generate_profile.json"

_CHILD = """
import json, sys
from pathlib import Path
from rolegen.config import GenerateConfig
from rolegen.config.options import from_dict
from rolegen.config.pipeline_stages import GENERATE_DEFAULTS
from rolegen.recipes.generate import run_generate
from rolegen.resources import personas_dir
scripts = [str(p) for p in sorted((personas_dir() / "scripts").glob("*.txt"))]
cfg = from_dict(GenerateConfig, {{**GENERATE_DEFAULTS, "personas": [str(personas_dir())],
    "user_scripts": scripts, "dialogues": {dialogues}, "turns": {turns}, "seed": 0,
    "engine": "vllm", "out": {out!r}, "export": False}}, "profile")
summary = run_generate(cfg, echo=lambda s: None)
t = json.loads((Path({out!r}) / "manifest.json").read_text())
print("RESULT " + json.dumps({{"timings": t["timings"], "tokens": t["tokens"]}}))
"""

# (part, pattern on one frame "function (file:line)"); the innermost matching frame wins,
# so a check called from the turn loop counts as checks
PARTS = [
    (
        "startup",
        r"_find_and_load|from_pretrained|load_model|load_weights|initialize_model"
        r"|_init_engine|profile_run|determine_available_memory|capture_model|warming_up",
    ),
    ("engine forward", r"model_runner|execute_model|sample_tokens|vllm/model_executor/"),
    ("checks", r"rolegen/checks/"),
    ("prompts", r"rolegen/generation/(prompts|templates)\.py|jinja2|tokenizers|tokenization_"),
    ("replies", r"rolegen/generation/(replies|dialogue_state)\.py"),
    (
        "engine client",
        r"rolegen/generation/engines/|vllm/(entrypoints|v1/engine/(llm_engine"
        r"|core_client|output_processor|processor))",
    ),
    ("engine scheduler and I/O", r"vllm/v1/(core|engine/core)"),
    ("turn loop", r"rolegen/generation/"),
]
_PATTERNS = [(name, re.compile(p)) for name, p in PARTS]


def classify(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):  # innermost first
        for name, pattern in _PATTERNS:
            if pattern.search(frame):
                return name
    return "other"


def profile(dialogues: int, turns: int, rate: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.txt"
        code = _CHILD.format(dialogues=dialogues, turns=turns, out=str(Path(tmp) / "run"))
        beside = Path(sys.executable).with_name("py-spy")
        spy = str(beside) if beside.is_file() else shutil.which("py-spy")
        if spy is None:
            sys.exit("py-spy not found beside this Python or on PATH: pip install py-spy")
        cmd = [
            spy,
            "record", "--subprocesses", "--rate", str(rate), "--format", "raw",
            "--output", str(raw), "--", sys.executable, "-c", code,
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp)
        wall = time.perf_counter() - t0
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
        if done.returncode or not lines:
            sys.exit(f"the profiled generate failed:\n{done.stderr[-3000:]}")
        result = json.loads(lines[-1][len("RESULT ") :])
        samples: Counter[str] = Counter()
        leaves: dict[str, Counter[str]] = {}  # part -> its innermost frames, for reading
        for line in raw.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if stack and n.isdigit():
                part = classify(stack)
                samples[part] += int(n)
                leaf = ";".join(stack.split(";")[-3:])
                leaves.setdefault(part, Counter())[leaf] += int(n)
    total = sum(samples.values())
    return {
        "wall_seconds": round(wall, 1),
        "cpu_seconds_sampled": round(total / rate, 1),
        "cores_busy": round(total / rate / wall, 2),
        "generate": result,
        "parts": {name: round(samples[name] / total, 3) for name, _ in [*PARTS, ("other", "")]},
        "top_stacks": {
            part: [[leaf, round(n / total, 4)] for leaf, n in c.most_common(6)]
            for part, c in leaves.items()
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dialogues", type=int, default=2)
    ap.add_argument("--turns", type=int, default=6)
    ap.add_argument("--rate", type=int, default=50)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    load = os.getloadavg()[0]
    figures = profile(args.dialogues, args.turns, args.rate)
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "load_average_before": round(load, 2),
        "dialogues_per_script": args.dialogues,
        "turns": args.turns,
        **figures,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wall {figures['wall_seconds']} s, {figures['cores_busy']} cores busy on average")
    print(f"{'part':<28}{'share of CPU time':>18}")
    for name, share in sorted(figures["parts"].items(), key=lambda kv: -kv[1]):
        print(f"{name:<28}{share:>18.3f}")


if __name__ == "__main__":
    main()
