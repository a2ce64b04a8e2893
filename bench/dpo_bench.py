"""DPO training speed: rolegen's DPO (two sequences per pair), its prefix-shared DPO, and
TRL's DPOTrainer, on the same preference pairs.

All three train the same LoRA (rolegen's defaults: r=16, alpha 32, no dropout, every
projection) of the same model (default: the embedded one) in the dtype `rolegen train`
picks (bf16 autocast over fp32 adapters where the CPU has bf16), on the same pairs
encoded once by rolegen's renderer (TRL gets the very token ids: prompt, chosen,
rejected), with sigmoid DPO (beta 0.1, no RPO term), AdamW at 1e-4 with warmup and
cosine decay, 4 micro-batches per optimizer step, one epoch, and the reference
log-probabilities computed once before training (TRL: `precompute_ref_log_probs`):
- rolegen: each pair as two sequences packed into one row, the context in each (what
  `rolegen train` does by default);
- shared: each pair as context, chosen reply, rejected reply in one row, each reply
  attending to the context only (`rolegen train --dpo-shared-prefix`);
- trl: DPOTrainer (trl 1.16, if installed): chosen and rejected as right-padded rows of
  one batch, the same number of pairs per micro-batch as rolegen's.
Each runs in its own process (peak memory per configuration). Reported per row: pair
tokens per second of training (the tokens of the chosen and the rejected sequence,
context counted in both: the same amount of work for every row), the tokens the
model actually ran (padding included for TRL), reference and training seconds, peak
RSS, the first and last step's loss.

Data: a rolegen run folder with preference pairs (default: generated once into
bench/.data/dpo-bench with the pipeline's generate defaults: the shipped personas and
scripts, one dialogue each, 12 turns). Writes bench/results/dpo.json.
Usage: python bench/dpo_bench.py [--data RUN] [--pairs 128] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
KINDS = ("rolegen", "shared", "trl")


def _setup(data: str, model: str | None, pairs: int):
    """The train config of the run (as `rolegen train --method dpo` would take it), the
    model folder, its tokenizer and the encoded training pairs."""
    from rolegen.config import TrainConfig
    from rolegen.models.checkpoints import inspect_model, load_tokenizer, resolve_model
    from rolegen.training.data import encode_pair_splits, load_train_data, resolve_format
    from rolegen.training.rendering import Renderer

    cfg = TrainConfig(
        data=data,
        model=model,
        method="dpo",
        dpo_epochs=1.0,
        dpo_max_pairs=pairs,
        dpo_learning_rate=1e-4,
        eval_steps=0,
        save_steps=0,
    )
    run = load_train_data(data)
    path = resolve_model(model)
    tok = load_tokenizer(path)
    info = inspect_model(path, tok)
    fmt = resolve_format(cfg, run, tok, path, print)
    renderer = Renderer(fmt, tok, min(cfg.max_length, info.context_length))
    train, _, _ = encode_pair_splits(renderer, run, pairs, cfg.seed)
    return cfg, path, tok, train


def _peak_rss_gb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)


def run_rolegen(kind: str, data: str, model: str | None, pairs: int) -> dict:
    from tqdm import tqdm

    from rolegen.training.lora import load_lora_model, training_dtype
    from rolegen.training.stages import DPOStage, reference_logps
    from rolegen.training.trainer import Trainer

    cfg, path, _, train = _setup(data, model, pairs)
    cfg.dpo_shared_prefix = kind == "shared"
    torch.manual_seed(cfg.seed)
    dtype = training_dtype(cfg.dtype)
    lora_model = load_lora_model(path, cfg, dtype)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(lora_model, cfg, Path(out), echo=lambda s: None)
        t = time.perf_counter()
        with tqdm(total=len(train), disable=True) as bar:
            ref = reference_logps(trainer.model, train, "cpu", bar, cfg.dpo_shared_prefix)
        ref_seconds = time.perf_counter() - t
        stage = DPOStage(cfg, train, [], {"train": ref, "test": None}, "cpu")
        result = trainer.run_stage(stage, None)
        log = [json.loads(x) for x in (Path(out) / "log.jsonl").read_text().splitlines()]
    # the trainer ends on a whole optimizer step, so it may run into a next epoch
    run, epoch = [], 0
    while len(run) < result.steps * trainer.accumulation:
        run += stage.micro_batches(epoch)
        epoch += 1
    done = [train[i] for spec in run[: result.steps * trainer.accumulation] for i in spec]
    return _row(kind, done, dtype, ref_seconds, result.seconds, result.tokens, log, result.steps)


def run_trl(data: str, model: str | None, pairs: int) -> dict:
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    from rolegen.training.batches import common_prefix, pair_batches
    from rolegen.training.lora import training_dtype
    from rolegen.training.rendering import IGNORE

    class Pretokenized(DPOTrainer):
        """Takes rolegen's token ids as they are (TRL would render the text itself)."""

        def _prepare_dataset(self, dataset, *args, **kwargs):
            return dataset

    cfg, path, tok, train = _setup(data, model, pairs)
    rows = []
    for p in train:
        c, r = p.chosen, p.rejected
        labelled_c = [i for i, x in enumerate(c.labels) if x != IGNORE]
        labelled_r = [i for i, x in enumerate(r.labels) if x != IGNORE]
        # the prompt: what both share before the first reply token; the completion ends
        # with the last labelled token (the end-of-turn), as rolegen's loss does
        n = min(common_prefix(c.input_ids, r.input_ids), labelled_c[0], labelled_r[0])
        end_c, end_r = labelled_c[-1] + 1, labelled_r[-1] + 1
        rows.append(
            {
                "prompt_ids": c.input_ids[:n],
                "chosen_ids": c.input_ids[n:end_c],
                "rejected_ids": r.input_ids[n:end_r],
            }
        )
    per = len(pair_batches(train, cfg, 0)[0])  # rolegen's pairs per micro-batch
    torch.manual_seed(cfg.seed)
    dtype = training_dtype(cfg.dtype)
    base = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="sdpa")
    lora = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=list(cfg.lora.target_modules),
        task_type="CAUSAL_LM",
    )
    with tempfile.TemporaryDirectory() as out:
        args = DPOConfig(
            output_dir=out,
            per_device_train_batch_size=per,
            gradient_accumulation_steps=cfg.gradient_accumulation,
            num_train_epochs=1,
            learning_rate=cfg.dpo_learning_rate,
            lr_scheduler_type="cosine",
            warmup_steps=cfg.warmup_ratio,  # below 1: a share of the steps
            weight_decay=cfg.weight_decay,
            max_grad_norm=cfg.max_grad_norm,
            beta=cfg.beta,
            max_length=None,
            precompute_ref_log_probs=True,
            precompute_ref_batch_size=8,
            bf16=dtype == torch.bfloat16,
            use_cpu=True,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            seed=cfg.seed,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        t = time.perf_counter()
        trainer = Pretokenized(
            model=get_peft_model(base, lora),
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tok,
        )
        ref_seconds = time.perf_counter() - t  # the reference pass runs in the constructor
        metrics = trainer.train().metrics
    log = [{"loss": r["loss"]} for r in trainer.state.log_history if "loss" in r and "step" in r]
    # TRL pads chosen and rejected of a micro-batch to its longest sequence
    ran = 0
    order = trainer.get_train_dataloader()
    for batch in order:
        ran += int(batch["input_ids"].numel())
    return _row(
        "trl",
        train,
        dtype,
        ref_seconds,
        metrics["train_runtime"],
        ran,
        log,
        trainer.state.global_step,
    )


def _row(kind, done, dtype, ref_seconds, seconds, ran, log, steps) -> dict:
    """`done`: the pairs the training steps went through, a pair once per pass."""
    pair_tokens = sum(len(p.chosen) + len(p.rejected) for p in done)
    return {
        "kind": kind,
        "pairs_trained": len(done),
        "dtype": str(dtype).replace("torch.", ""),
        "optimizer_steps": steps,
        "pair_tokens": pair_tokens,
        "model_tokens": ran,
        "reference_seconds": round(ref_seconds, 2),
        "train_seconds": round(seconds, 2),
        "pair_tokens_per_second": round(pair_tokens / seconds, 1),
        "model_tokens_per_second": round(ran / seconds, 1),
        "peak_rss_gb": _peak_rss_gb(),
        "first_loss": log[0]["loss"] if log else None,
        "last_loss": log[-1]["loss"] if log else None,
    }


def ensure_data(path: Path) -> Path:
    if (path / "preference" / "dataset_dict.json").is_file():
        return path
    from rolegen.config import GenerateConfig
    from rolegen.config.options import from_dict
    from rolegen.config.pipeline_stages import GENERATE_DEFAULTS
    from rolegen.recipes.generate import run_generate
    from rolegen.resources import personas_dir

    scripts = [str(p) for p in sorted((personas_dir() / "scripts").glob("*.txt"))]
    print(f"generating the bench data into {path} (the pipeline's generate stage: minutes) ...")
    cfg = {
        **GENERATE_DEFAULTS,
        "personas": [str(personas_dir())],
        "user_scripts": scripts,
        "dialogues": len(scripts),
        "turns": 12,
        "seed": 0,
        "out": str(path),
    }
    run_generate(from_dict(GenerateConfig, cfg, "dpo bench"), echo=lambda s: None)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE / ".data" / "dpo-bench"))
    ap.add_argument("--pairs", type=int, default=128, help="pairs trained (the pipeline's 128)")
    ap.add_argument("--model", default=None, help="model folder (default: the embedded model)")
    ap.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    ap.add_argument("--out", default=str(HERE / "results" / "dpo.json"))
    ap.add_argument("--one", choices=KINDS)
    args = ap.parse_args()
    if args.one:
        if args.one == "trl":
            row = run_trl(args.data, args.model, args.pairs)
        else:
            row = run_rolegen(args.one, args.data, args.model, args.pairs)
        print(json.dumps(row))
        return
    data = ensure_data(Path(args.data))
    results, skipped = {}, {}
    for kind in args.kinds:
        if kind == "trl":
            try:
                import trl  # noqa: F401
            except ImportError:
                skipped["trl"] = "trl is not installed (pip install trl==1.16.0)"
                continue
        cmd = [sys.executable, __file__, "--one", kind, "--data", str(data)]
        cmd += ["--pairs", str(args.pairs)] + (["--model", args.model] if args.model else [])
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"{kind} failed:\n{out.stderr[-4000:]}")
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    base = results.get("rolegen", {}).get("pair_tokens_per_second")
    for r in results.values():
        r["speedup_vs_rolegen"] = round(r["pair_tokens_per_second"] / base, 2) if base else None
    report = {
        "machine": f"{torch.get_num_threads()} threads, torch {torch.__version__}",
        "data": str(data),
        "model": args.model or "embedded",
        "versions": _versions(),
        "results": results,
        "skipped": skipped,
    }
    print(
        f"{'':8} {'pairs':>5} {'pair tok/s':>10} {'model tok/s':>11} {'ref s':>7} "
        f"{'train s':>8} {'RSS':>6} {'loss first/last':>16} {'speedup':>7}"
    )
    for k, r in results.items():
        print(
            f"{k:8} {r['pairs_trained']:>5} {r['pair_tokens_per_second']:>10.1f} "
            f"{r['model_tokens_per_second']:>11.1f} {r['reference_seconds']:>7.1f} "
            f"{r['train_seconds']:>8.1f} {r['peak_rss_gb']:>5.2f}G "
            f"{r['first_loss']:>7.4f}/{r['last_loss']:<8.4f} {r['speedup_vs_rolegen']:>6}x"
        )
    for k, why in skipped.items():
        print(f"{k}: skipped, {why}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "peft", "trl"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


if __name__ == "__main__":
    main()
