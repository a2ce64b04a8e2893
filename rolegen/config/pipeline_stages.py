"""The stages of a pipeline run, as settings: each round's generate and train configs and
the eval's, from the pipeline's own settings over the defaults the ablation chose.

Round k >= 2 generates with round k-1's adapter under a seed of its own (`round_seed`)
and trains on from that adapter; a teacher writes round 1 only. Every config is built
before any stage runs, so a bad setting of a later round fails at once.

Non-goals: running the stages (`recipes/pipeline.py`), each stage's fields (their own
config modules).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from rolegen.config.evaluate import EvalConfig
from rolegen.config.generate import GenerateConfig
from rolegen.config.options import from_dict
from rolegen.config.pipeline import PipelineConfig
from rolegen.config.train import TrainConfig
from rolegen.resources import personas_dir

# Training data: scripted users (the 135M simulator narrates as the character), 12
# turns, and a resample budget that keeps dialogues going: every rejected candidate
# becomes a DPO negative in a late-turn context, where the repetition happens.
# A reply to "who are you?" gets 24 draws: the embedded base names itself in about 1
# draw in 25 that also passes the other checks.
# The character's replies are drawn with frequency penalty 0.5 on, and beside each
# accepted reply one plain-sampled reply from the same context is its rejected side
# (decoding-fix distillation: the adapter learns what the flag does, without the flag).
# Three training prompts, so that the adapter learns the habit rather than the template;
# `plain` stays out of training for the eval.
# Beside each accepted reply, one reply from the same context under another card's
# prompt is a rejected side too (cross-card negatives): the adapter learns to answer
# from its own card. Chosen by the ablation of 2026-12-05 (docs/results/): wrong identity
# 0.125 -> 0.049 on the held-out eval, and no near-copy through turn 36 of the long
# suite; persona top-1 fell under rolegen's prompt (0.42 -> 0.31), not under `plain`.
GENERATE_DEFAULTS = {
    "candidates": 4,
    "max_resamples": 7,
    "asked_resamples": 23,
    "on_exhausted": "keep",
    "distill": "frequency-penalty=0.5",
    "plain_negatives": 1,
    "cross_card_negatives": 1,
    "prompts": ["rolegen", "tavern-greeting", "sheet-examples"],
}
# SFT three epochs over the clean (distilled) turns, then DPO on a sample of the rejects
# with an NLL term on the chosen replies (keeps fluency while the rejected loops are
# pushed down); each pair's shared context is run once (1.75x the pair tokens/s of two
# sequences). Sequence-level unlikelihood on every 4th micro-batch of both stages pushes
# down the 4-grams the model's own greedy replies repeat. The methods ablation
# (bench/ablation.py, docs/results/) chose the three epochs and the unlikelihood: with one epoch
# and no unlikelihood seq-rep-4 stayed at 5x the frequency penalty's; with both it is
# at or below the flag's under rolegen's prompt and the held-out plain one.
# Beside the 128 logged pairs, 24 self-copy pairs (the reply kept against the reply before
# it given again; training/copy_pairs.py). Chosen by the ablation of 2026-12-05 on the same
# data (docs/results/2026-12-05-long-eval.md), two training seeds per arm: held-out
# persona top-1 under rolegen's prompt 0.31 -> 0.45 and 0.38 -> 0.42, repetition under
# plain no worse at either seed; drift rose at both (0.007 -> 0.042, 0.021 -> 0.062) and
# wrong identity too, by less than the seeds differ (0.049 -> 0.097, 0.125 -> 0.146).
# Near-copy in turns 37-48 of the long suite: 0.00 and 0.09 over the two seeds, against
# 0.09 and 0.40 without the pairs.
TRAIN_DEFAULTS = {
    "method": "sft+dpo",
    "epochs": 3.0,
    "dpo_epochs": 1.0,
    "dpo_max_pairs": 128,
    "dpo_copy_pairs": 24,
    "dpo_learning_rate": 1e-4,
    "dpo_sft_weight": 0.5,
    "dpo_shared_prefix": True,
    "ul_weight": 0.5,
    "ul_every": 4,
    "eval_steps": 0,
}
# The eval scores under rolegen's prompt and under the held-out plain one, against base
# and the decoding fixes a user tries first (repetition penalty 1.3 and the adapter with
# a flag on top are left to `rolegen eval`: neither is the question the pipeline asks).
EVAL_DEFAULTS = {
    "prompts": ["rolegen", "plain"],
    "systems": [
        "base",
        "base+repetition-penalty=1.15",
        "base+frequency-penalty=0.5",
        "base+no-repeat-ngram=3",
        "adapter",
    ],
}


def teacher_server(cfg: PipelineConfig) -> dict:
    """Generate settings for a teacher behind a server: its token ids rendered with the
    teacher's own templates when its model folder is given, else chat messages."""
    if not cfg.teacher_url:
        return {}
    mode = "completions" if cfg.teacher_model else "chat"
    return {"engine": "openai", "base_url": cfg.teacher_url, "request_mode": mode}


def round_seed(seed: int, k: int) -> int:
    """Round k's generate seed: `seed` itself in round 1 (a one-round pipeline generates
    with the run's own seed), after that one derived from both, so that round k does not
    replay round k-1's dialogues; a hash, so that no round's seed is another run's seed + 1."""
    if k == 1:
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}/round/{k}".encode()).digest()[:4], "big") >> 1


def round_dir(out: Path, k: int) -> Path:
    """Round k's folder: the run folder itself for round 1, `<out>/round<k>` after."""
    return out if k == 1 else out / f"round{k}"


@dataclass
class Round:
    k: int
    data: Path
    adapter: Path
    generate: GenerateConfig
    train: TrainConfig


def plan_round(cfg: PipelineConfig, out: Path, k: int) -> Round:
    """Round k's generate and train settings: round 1 from the pipeline's settings (and
    the teacher's), round k >= 2 the student with round k-1's adapter, on new seeds."""
    data, adapter = round_dir(out, k) / "data", round_dir(out, k) / "adapter"
    previous = round_dir(out, k - 1) / "adapter"
    scripts = cfg.user_scripts or [
        str(p) for p in sorted((personas_dir() / "scripts").glob("*.txt"))
    ]
    teacher = {"model": cfg.teacher_model or cfg.model, **teacher_server(cfg)}
    generate = {
        **GENERATE_DEFAULTS,
        "personas": cfg.personas or [str(personas_dir())],
        "user_scripts": scripts,
        "dialogues": cfg.dialogues * len(scripts),
        "turns": cfg.turns,
        "model": cfg.model,
        "seed": cfg.seed,
        **(teacher if k == 1 else {}),
        **cfg.generate,
    }
    if k > 1:
        seed = round_seed(generate["seed"], k)
        generate.update(model=cfg.model, seed=seed, adapter=str(previous))
    train = {
        **TRAIN_DEFAULTS,
        "model": cfg.model,
        "seed": cfg.seed,
        **cfg.train,
        **({"init_adapter": str(previous)} if k > 1 else {}),
        "data": str(data),
        "out": str(adapter),
        "resume": (adapter / "checkpoints").is_dir(),
    }
    generate.update(out=str(data), resume=(data / "dialogues.jsonl").exists())
    return Round(
        k,
        data,
        adapter,
        from_dict(GenerateConfig, generate, "pipeline config, generate"),
        from_dict(TrainConfig, train, "pipeline config, train"),
    )


def eval_stage(cfg: PipelineConfig, folder: Path, adapter: Path) -> EvalConfig:
    """The eval of the last round's adapter, into `folder` (resumed if it holds dialogues)."""
    return from_dict(
        EvalConfig,
        {
            "model": cfg.model,
            "seed": cfg.seed,
            "dialogues": cfg.eval_dialogues,
            **EVAL_DEFAULTS,
            **cfg.eval,
            "adapter": str(adapter),
            "out": str(folder),
            "resume": (folder / "dialogues.jsonl").exists(),
        },
        "pipeline config, eval",
    )
