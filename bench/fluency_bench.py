"""The eval's fluency pass on the embedded model: one dialogue per forward pass against
packed rows (`FluencyScorer.score`), on the same records, in one process.

Reported per way: dialogues, tokens, seconds, tokens/s, and the forward pass's FLOP
rate as a fraction of the matmul rate in the scorer's dtype, measured in the same run
(2 x parameters per token for the weights, plus causal attention: 2 x layers x hidden x
the squared length of each dialogue); and the largest difference between the two ways' reply
scores (they must agree: packing changes no score).

Data: an eval run's dialogues.jsonl (default outputs/pipeline/eval, which
`make pipeline` writes). Writes bench/results/fluency.json.

    python bench/fluency_bench.py [--data DIALOGUES.jsonl] [--dialogues 48]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from machine import matmul_rate

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="outputs/pipeline/eval/dialogues.jsonl")
    parser.add_argument("--dialogues", type=int, default=48)
    parser.add_argument("--out", default=str(HERE / "results" / "fluency.json"))
    args = parser.parse_args()

    from rolegen.evaluation import model_scores
    from rolegen.generation.templates import Templates
    from rolegen.models.checkpoints import embedded_model_dir, inspect_model, load_tokenizer
    from rolegen.training.batches import pack

    records = [json.loads(x) for x in Path(args.data).read_text().splitlines() if x.strip()]
    records = records[: args.dialogues]
    path = embedded_model_dir()
    tokenizer = load_tokenizer(path)
    info = inspect_model(path, tokenizer)
    templates = Templates(None)
    formats = {}

    def fmt(record):
        name = record.get("format")
        if name not in formats:
            formats[name] = templates.resolve_format(name, tokenizer, path)
        return formats[name]

    scorer = model_scores.FluencyScorer(path, tokenizer, info.context_length)
    config = scorer.model.config
    items = [scorer.prepare(r, fmt(r)) for r in records]
    items = [item for item in items if item is not None]
    params = sum(p.numel() for p in scorer.model.parameters())
    tokens = sum(len(item.ids) for item in items)
    flops = 2 * params * tokens + sum(
        2 * config.num_hidden_layers * config.hidden_size * len(item.ids) ** 2 for item in items
    )
    peak = matmul_rate(scorer.model.dtype)  # the dtype the scorer runs in on this CPU
    scorer.score(items[:1])  # warm-up

    def timed(batches):
        start = time.perf_counter()
        scores = [None] * len(items)
        for batch in batches:
            for n, s in zip(batch, scorer.score([items[n] for n in batch])):
                scores[n] = s
        return time.perf_counter() - start, scores

    ways = {
        "one_per_pass": [[n] for n in range(len(items))],
        "packed": pack([item.ids for item in items], scorer.row_tokens),
    }
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg()[0],
        "data": args.data,
        "dialogues": len(items),
        "tokens": tokens,
        "row_tokens": scorer.row_tokens,
        "dtype": str(scorer.model.dtype).removeprefix("torch."),
        "matmul_peak_gflops": round(peak / 1e9, 1),
        "ways": {},
    }
    scores = {}
    for name, batches in ways.items():
        seconds, scores[name] = timed(batches)
        result["ways"][name] = {
            "forward_passes": len(batches),
            "seconds": round(seconds, 2),
            "tokens_per_second": round(tokens / seconds, 1),
            "fraction_of_matmul_peak": round(flops / seconds / peak, 3),
        }
    result["max_abs_score_difference"] = max(
        abs(a[k] - b[k]) for a, b in zip(scores["one_per_pass"], scores["packed"]) for k in a
    )
    result["speedup_packed"] = round(
        result["ways"]["one_per_pass"]["seconds"] / result["ways"]["packed"]["seconds"], 2
    )
    result["load_average_after"] = os.getloadavg()[0]
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
