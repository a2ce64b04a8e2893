"""Training speed on the embedded model: rolegen's SFT step vs a plain PEFT loop.

Both train the same LoRA (r=16, all projections) of the embedded model on the same
dialogues with the same assistant-only labels, for the same number of real tokens:
- rolegen: examples packed into --max-length rows, attention causal within each
  example (`packed_attention.py`), no padding, logits only where labels fall, in the
  dtype training takes on this CPU (bf16 where native, else fp32) (`rolegen.training.losses`, `rolegen.training.lora`);
- plain: what a user writes first with PEFT + transformers: batches of 4 dialogues in
  data order, right-padded with an attention mask, `model(..., labels=...)`.
Each runs in its own process (peak memory per configuration). Reported: tokens/s
(real tokens, padding excluded), padded share, peak RSS, and model FLOPs
utilisation: 6 x parameters x tokens/s (the PaLM convention, counting the frozen
weights' gradient FLOPs that LoRA skips, as is usual) against the matmul rate of that
dtype, measured in the same run.

Data: a rolegen run folder (default: generated once into bench/.data/train-bench
with four personas, 10 dialogues each, 8 turns).
Writes bench/results/train.json. Usage: python bench/train_bench.py [--data RUN]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from machine import matmul_rate

HERE = Path(__file__).resolve().parent
PERSONAS = ["captain-mara-vell", "detective-sam-calloway", "tea-house-hana", "sir-aldric"]


def _examples(data: str, max_length: int):
    from rolegen.generation.templates import ChatTemplateFormat
    from rolegen.models.checkpoints import embedded_model_dir, load_tokenizer
    from rolegen.training.data import encode_sft, load_train_data
    from rolegen.training.rendering import Renderer

    tok = load_tokenizer(embedded_model_dir())
    rows = load_train_data(data).train
    examples, _ = encode_sft(Renderer(ChatTemplateFormat(tok), tok, max_length), rows)
    return examples, tok


def _model(attention: str):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rolegen.config import LoraSettings
    from rolegen.models.checkpoints import embedded_model_dir
    from rolegen.models.hardware import cpu_dtype
    from rolegen.training import packed_attention

    packed_attention.register()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(
        embedded_model_dir(), dtype=cpu_dtype(), attn_implementation=attention
    )
    d = LoraSettings()  # rolegen's defaults, for both ways
    lora = LoraConfig(
        r=d.r,
        lora_alpha=d.alpha,
        lora_dropout=d.dropout,
        target_modules=d.target_modules,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    if (
        attention == "rolegen_packed"
    ):  # as rolegen.training.lora.load_lora_model does under autocast
        for module in model.modules():
            if hasattr(module, "lora_A"):
                module.cast_input_dtype_enabled = False
    return model


def one(kind: str, data: str, max_length: int, budget_tokens: int) -> dict:
    from rolegen.training.batches import collate_packed, pack
    from rolegen.training.losses import sft_loss

    examples, tok = _examples(data, max_length)
    model = _model("rolegen_packed" if kind == "rolegen" else "sdpa")
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    params = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    real = padded = 0
    batches = []
    if kind == "rolegen":
        for row in pack(examples, max_length):
            batches.append(collate_packed([[examples[i] for i in row]]))
    else:
        for i in range(0, len(examples), 4):
            group = examples[i : i + 4]
            width = max(len(e) for e in group)
            ids = torch.full((len(group), width), tok.pad_token_id or 0)
            labels = torch.full((len(group), width), -100)
            mask = torch.zeros((len(group), width), dtype=torch.long)
            for r, e in enumerate(group):
                ids[r, : len(e)] = torch.tensor(e.input_ids)
                labels[r, : len(e)] = torch.tensor(e.labels)
                mask[r, : len(e)] = 1
            batches.append({"input_ids": ids, "labels": labels, "attention_mask": mask})
    # warm-up step (allocator, kernels), not timed
    t0 = None
    steps = 0
    for k, batch in enumerate(batches * 4):
        if kind == "rolegen":
            loss, _ = sft_loss(model, batch)
        else:
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if k == 0:
            t0 = time.perf_counter()
            continue
        n = int((batch["labels"] != -100).numel())
        tokens = (
            int((batch["segments"] >= 0).sum())
            if kind == "rolegen"
            else int(batch["attention_mask"].sum())
        )
        real += tokens
        padded += n - tokens
        steps += 1
        if real >= budget_tokens:
            break
    seconds = time.perf_counter() - t0
    return {
        "kind": kind,
        "micro_batches": steps,
        "tokens": real,
        "padded_tokens": padded,
        "padded_share": round(padded / (real + padded), 4),
        "seconds": round(seconds, 2),
        "tokens_per_second": round(real / seconds, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
        "frozen_parameters": params,
    }


def ensure_data(path: Path) -> Path:
    if (path / "dataset" / "dataset_dict.json").is_file():
        return path
    from rolegen.config import GenerateConfig
    from rolegen.recipes.generate import run_generate

    print(f"generating the bench data into {path} (a few minutes) ...")
    run_generate(
        GenerateConfig(personas=PERSONAS, dialogues=10, turns=8, out=str(path), seed=0),
        echo=lambda s: None,
    )
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE / ".data" / "train-bench"))
    ap.add_argument("--max-length", type=int, default=2048)
    ap.add_argument("--tokens", type=int, default=30000, help="real tokens timed per config")
    ap.add_argument("--one", choices=["rolegen", "plain"])
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.data, args.max_length, args.tokens)))
        return
    data = ensure_data(Path(args.data))
    from rolegen.models.hardware import cpu_dtype

    training = cpu_dtype()  # the dtype both ways train in, and whose peak MFU is against
    rates = {"training": matmul_rate(training)}
    results = {}
    for kind in ("plain", "rolegen"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                kind,
                "--data",
                str(data),
                "--max-length",
                str(args.max_length),
                "--tokens",
                str(args.tokens),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    rates["training_after"] = matmul_rate(training)
    peak = max(rates["training"], rates["training_after"])
    for r in results.values():
        r["mfu"] = round(6 * r["frozen_parameters"] * r["tokens_per_second"] / peak, 4)
    report = {
        "machine": f"{torch.get_num_threads()} threads, torch {torch.__version__}",
        "dtype": str(training).removeprefix("torch."),
        "data": str(data),
        "matmul_tflops": {k: round(v / 1e12, 3) for k, v in rates.items()},
        "results": results,
        "speedup": round(
            results["rolegen"]["tokens_per_second"] / results["plain"]["tokens_per_second"], 2
        ),
    }
    print(
        f"{report['dtype']} matmul: {rates['training'] / 1e12:.2f} / "
        f"{rates['training_after'] / 1e12:.2f} TFLOPS"
    )
    print(f"{'':10} {'tokens/s':>9} {'padding':>8} {'peak RSS':>9} {'MFU':>6}")
    for k, r in results.items():
        print(
            f"{k:10} {r['tokens_per_second']:>9.1f} {r['padded_share']:>8.1%} "
            f"{r['peak_rss_gb']:>8.2f}G {r['mfu']:>6.1%}"
        )
    print(f"speedup: {report['speedup']}x")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "train.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
