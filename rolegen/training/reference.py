"""The frozen reference of a preference stage (DPO's log-probabilities, FTPO's logits),
computed once before the stage's first step and kept in the adapter folder's
`checkpoints/`, so that a rerun or a resume with the same weights and pairs reuses it.

Its key (`reference_key`) is what the reference depends on: the trainable weights as the
stage starts and the pairs' tokens. Resumed inside the stage, the weights differ from
the stage's start, so only the pairs are compared then. A damaged file is recomputed,
never trusted; a crash mid-write leaves no half file.

Non-goals: the losses that read it (`stages.py`), the training loop (`trainer.py`).
"""

from __future__ import annotations

import hashlib
from array import array
from functools import partial
from pathlib import Path

import torch
from tqdm import tqdm

from rolegen.training.stages import reference_logits, reference_logps


def frozen_reference(
    trainer,
    pairs_train,
    pairs_test,
    *,
    ftpo: bool,
    shared_prefix: bool,
    folder: Path,
    mid_stage: bool,
    echo=print,
) -> dict:
    """{"train": ..., "test": ...}: the saved reference if its key matches, else one
    computed now with `trainer`'s model as it is (and saved by the main process)."""
    acc = trainer.accelerator
    path = folder / ("ftpo_reference.pt" if ftpo else "dpo_reference.pt")
    key = reference_key(
        trainer.model, pairs_train, pairs_test, "ftpo" if ftpo else f"dpo shared={shared_prefix}"
    )
    ref = _load(path, key, check_weights=not mid_stage)
    if ref is not None:
        echo(f"{path.name}: reused (same weights at the stage's start, same pairs)")
        return ref
    # a forward pass per pair through the frozen model: minutes on a CPU, so it has a bar
    reference = reference_logits if ftpo else partial(reference_logps, shared=shared_prefix)
    with tqdm(
        total=len(pairs_train) + len(pairs_test),
        desc="dpo reference",
        unit="pair",
        dynamic_ncols=True,
        disable=not acc.is_main_process,
    ) as bar:
        ref = {
            "train": reference(trainer.model, pairs_train, acc.device, bar),
            "test": reference(trainer.model, pairs_test, acc.device, bar),
        }
    if acc.is_main_process:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({**ref, "key": key}, tmp)
        tmp.replace(path)  # a crash mid-write leaves no half reference
    return ref


def reference_key(model, pairs_train, pairs_test, kind: str) -> dict:
    """What a preference stage's frozen reference depends on: the trainable weights as
    the stage starts (the base's are pinned by the checkpoint's base hash), and the
    pairs' tokens with what is computed from them. A rerun with the same key reuses
    the saved reference."""
    weights = hashlib.sha256()
    for name, p in model.named_parameters():
        if p.requires_grad:
            weights.update(name.encode())
            weights.update(p.detach().float().cpu().numpy().tobytes())
    pairs = hashlib.sha256(kind.encode())
    for split in (pairs_train, pairs_test):
        pairs.update(str(len(split)).encode())
        for pair in split:
            for ex in (pair.chosen, pair.rejected):
                pairs.update(array("i", ex.input_ids).tobytes())
                pairs.update(array("i", ex.labels).tobytes())
    return {"weights": weights.hexdigest(), "pairs": pairs.hexdigest()}


def _load(path: Path, key: dict, check_weights: bool) -> dict | None:
    if not path.is_file():
        return None
    try:
        saved = torch.load(path)
    except Exception:  # a damaged file is recomputed, not trusted
        return None
    found = saved.pop("key", None) if isinstance(saved, dict) else None
    if not found or found.get("pairs") != key["pairs"]:
        return None
    if check_weights and found.get("weights") != key["weights"]:
        return None
    return saved
