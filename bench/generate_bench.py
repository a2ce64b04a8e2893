"""Benchmark `rolegen generate` on the embedded model.

Measures, in one process and one run (the machines are shared and noisy, so the
figures that matter are ratios):
- generated tokens/s of `rolegen generate` with the vLLM engine, model load excluded
  (64 dialogues x 6 character turns, max 96 new tokens, user simulator on);
- orchestration overhead: the share of generation wall time spent outside engine calls;
- the naive way (transformers, one dialogue at a time, turn by turn, batch 1) on the
  same model, prompts and token budget, over a subset of dialogues; speedup = ratio of
  tokens/s;
- peak memory (this process, and the vLLM engine process).

Writes bench/results/generate.json and prints a table.
Usage: python bench/generate_bench.py [--dialogues 64] [--naive-dialogues 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

PERSONAS = [
    "captain-mara-vell",
    "detective-sam-calloway",
    "alchemist-orla-finch",
    "tea-house-hana",
    "starship-ai-vega",
    "sir-aldric",
    "lighthouse-keeper-elias",
    "chef-pip",
]


def _config(
    out: Path,
    dialogues: int,
    turns: int,
    max_new_tokens: int,
    engine: str,
    batch: int,
    compile: bool = False,
):
    from rolegen.config import EngineConfig, GenerateConfig, SamplingConfig

    per_persona = max(1, dialogues // len(PERSONAS))
    return GenerateConfig(
        personas=PERSONAS,
        dialogues=per_persona,
        turns=turns,
        engine_config=EngineConfig(engine=engine, compile=compile),
        out=str(out),
        batch_size=batch,
        seed=0,
        sampling=SamplingConfig(max_new_tokens=max_new_tokens),
        check=False,  # raw generation speed; the checks have their own benchmarks
        export=False,
    )


def run_rolegen(out: Path, dialogues: int, turns: int, max_new_tokens: int, compile: bool) -> dict:
    from rolegen.recipes.generate import run_generate

    cfg = _config(out, dialogues, turns, max_new_tokens, "vllm", batch=dialogues, compile=compile)
    summary = run_generate(cfg, echo=lambda s: None)
    manifest = json.loads((out / "manifest.json").read_text())
    t = manifest["timings"]
    return {
        "dialogues": summary.dialogues,
        "character_turns": summary.character_turns,
        "generated_tokens": summary.generated_tokens,
        "engine_load_seconds": t["engine_load_seconds"],
        "generate_seconds": t["generate_seconds"],
        "engine_seconds": t["engine_seconds"],
        "tokens_per_second": summary.generated_tokens / t["generate_seconds"],
        "overhead_share": t["overhead_share"],
        "engine_calls": manifest["tokens"]["engine_calls"],
    }


def run_naive(dialogues: int, turns: int, max_new_tokens: int) -> dict:
    """One dialogue at a time, one request per call, transformers generate."""
    from rolegen.cards.files import load_personas
    from rolegen.cards.personas import available_user_personas, load_user_persona
    from rolegen.generation.dialogue import TurnLoop
    from rolegen.generation.dialogue_state import Dialogue
    from rolegen.generation.engines import EngineOptions
    from rolegen.generation.engines.hf import HFEngine
    from rolegen.generation.loop_settings import LoopSettings
    from rolegen.generation.plan import plan_dialogues
    from rolegen.generation.prompts import PromptBuilder
    from rolegen.generation.templates import ChatTemplateFormat, Templates
    from rolegen.models.checkpoints import inspect_model, load_tokenizer, resolve_model

    cfg = _config(Path("unused"), len(PERSONAS), turns, max_new_tokens, "hf", batch=1)
    path = resolve_model(None)
    tok = load_tokenizer(path)
    info = inspect_model(path, tok)
    engine = HFEngine(path, EngineOptions(eos_token_ids=info.eos_token_ids, batch_size=1))
    builder = PromptBuilder(Templates(), ChatTemplateFormat(tok), tok, 4096, max_new_tokens)
    personas = [p for name in PERSONAS for p in load_personas(name)]
    users = [load_user_persona(n) for n in available_user_personas()]
    todo = plan_dialogues(cfg, personas, users, [])[:dialogues]
    loop = TurnLoop(
        engine,
        builder,
        LoopSettings(
            turns=turns,
            seed=0,
            temperature=0.8,
            top_p=0.95,
            repetition_penalty=1.0,
            max_new_tokens=max_new_tokens,
            user_max_new_tokens=48,
            max_resamples=2,
        ),
    )
    start = time.perf_counter()
    turns_done = 0
    for d in todo:
        d = loop.start(Dialogue(id=d.id, persona=d.persona, user=d.user))
        loop.run([d])
        turns_done += d.character_turns
    seconds = time.perf_counter() - start
    return {
        "dialogues": len(todo),
        "character_turns": turns_done,
        "generated_tokens": loop.stats.generated_tokens,
        "generate_seconds": seconds,
        "tokens_per_second": loop.stats.generated_tokens / seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dialogues", type=int, default=64)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--naive-dialogues", type=int, default=4)
    parser.add_argument("--no-compiled", action="store_true", help="skip the --compile run")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "generate.json"))
    args = parser.parse_args()

    runs = {}
    for compile in [False] if args.no_compiled else [False, True]:
        with tempfile.TemporaryDirectory() as tmp:
            runs["compiled" if compile else "eager"] = run_rolegen(
                Path(tmp) / "run", args.dialogues, args.turns, args.max_new_tokens, compile
            )
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    naive = run_naive(args.naive_dialogues, args.turns, args.max_new_tokens)

    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "model": "SmolLM2-135M-Instruct (embedded)",
        "settings": vars(args),
        "rolegen_vllm": runs,
        "naive_transformers": naive,
        "speedup_tokens_per_second": {
            k: r["tokens_per_second"] / naive["tokens_per_second"] for k, r in runs.items()
        },
        "peak_rss_mb": {
            "rolegen_process": round(self_peak),
            "vllm_engine_process": round(child_peak),
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")

    n = naive
    cols = list(runs)
    head = "".join(f"{'rolegen vLLM ' + c:>24}" for c in cols)
    print(f"\n{'':32}{head}{'naive HF 1x1':>16}")

    def row(label, key, fmt, naive_value=""):
        cells = "".join(f"{format(runs[c][key], fmt):>24}" for c in cols)
        print(f"{label:32}{cells}{naive_value:>16}")

    row("dialogues", "dialogues", "d", str(n["dialogues"]))
    row("generated tokens", "generated_tokens", "d", str(n["generated_tokens"]))
    row("generation s (load excluded)", "generate_seconds", ".1f", f"{n['generate_seconds']:.1f}")
    row("tokens/s", "tokens_per_second", ".1f", f"{n['tokens_per_second']:.1f}")
    speed = "".join(f"{result['speedup_tokens_per_second'][c]:>23.1f}x" for c in cols)
    print(f"{'speedup over naive':32}{speed}")
    overhead = "".join(f"{100 * runs[c]['overhead_share']:>23.2f}%" for c in cols)
    print(f"{'time outside engine calls':32}{overhead}")
    row("engine load s", "engine_load_seconds", ".1f")
    print(f"{'peak RSS MB (rolegen / engine)':32}{round(self_peak):>15} / {round(child_peak)}")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
