"""The stages `rolegen train` runs, each a `trainer.Stage`: data, loss and eval of one
kind of training over the same LoRA model.

- `SFTStage`: assistant-only NLL on packed dialogues.
- `DPOStage`: sigmoid DPO on (chosen, rejected) pairs, each pair's context run twice
  (`batches.pair_tensors`) or once (`--dpo-shared-prefix`,
  `batches.shared_pair_tensors`), plus the RPO term.
- `FTPOStage`: the antislop paper's token-level preference at each pair's divergence
  token (`--dpo-loss ftpo`).
- `WithUnlikelihood`: any stage plus sequence-level unlikelihood on the model's own
  greedy replies (`--ul-weight`).
The frozen references the preference stages compare against are computed here too
(`reference_logps`, `reference_logits`), once, before the stage starts.

Non-goals: the losses themselves (`losses.py`), batching (`data.py`), the loop,
optimizer and checkpoints (`trainer.py`), reading data and building the model (the
train recipe).
"""

from __future__ import annotations

import random

import torch

from rolegen.config import TrainConfig
from rolegen.training.batches import (
    collate_packed,
    divergence_tensors,
    pair_batches,
    pair_tensors,
    reply_starts,
    sft_batches,
    shared_pair_tensors,
)
from rolegen.training.losses import (
    divergence_logits,
    dpo_loss,
    ftpo_loss,
    greedy_continuation,
    pair_logps,
    repeat_mask,
    sft_loss,
    shared_pair_logps,
    unlikelihood_loss,
)
from rolegen.training.rendering import IGNORE, Example, PairExample

_EVAL_PAIRS = 8  # pairs per forward pass when scoring without gradients
# Unlikelihood marks repeats of token 4-grams: the n the checks' seq-rep-4 and crep-4
# use (on words there) and Welleck et al.'s sequence-level setting.
_UL_NGRAM = 4


class SFTStage:
    """Assistant-only NLL on packed dialogues; eval: the test split's loss per token."""

    name = "sft"

    def __init__(self, cfg: TrainConfig, train: list[Example], test: list[Example], device):
        self.cfg, self.train, self.test, self.device = cfg, train, test, device
        self.epochs, self.lr = cfg.epochs, cfg.learning_rate

    def micro_batches(self, epoch: int) -> list:
        return sft_batches(self.train, self.cfg, epoch)

    def step(self, model, rows) -> tuple[torch.Tensor, dict]:
        batch = collate_packed([[self.train[i] for i in row] for row in rows])
        loss, n = sft_loss(model, _to(batch, self.device))
        real = sum(len(self.train[i]) for row in rows for i in row)
        width = batch["input_ids"].numel()
        return loss, {"tokens": real, "padded": width - real, "target_tokens": n}

    def evaluate(self, model) -> dict:
        if not self.test:
            return {}
        total_nll, total_n = 0.0, 0
        for rows in sft_batches(self.test, self.cfg, 0):
            batch = collate_packed([[self.test[i] for i in row] for row in rows])
            loss, n = sft_loss(model, _to(batch, self.device))
            total_nll += float(loss) * n
            total_n += n
        return {"loss": round(total_nll / max(1, total_n), 5)}


class DPOStage:
    """DPO on (chosen, rejected) pairs against reference log-probabilities `ref`
    ({"train"/"test": (chosen, rejected)}, from `reference_logps`), plus the RPO term
    when `--dpo-sft-weight` is set; eval: loss, reward accuracy and margin."""

    name = "dpo"

    def __init__(
        self, cfg: TrainConfig, train: list[PairExample], test: list[PairExample], ref: dict, device
    ):
        self.cfg, self.train, self.test, self.ref, self.device = cfg, train, test, ref, device
        self.epochs, self.lr = cfg.dpo_epochs, cfg.dpo_learning_rate

    def micro_batches(self, epoch: int) -> list:
        return pair_batches(self.train, self.cfg, epoch)

    def step(self, model, idxs) -> tuple[torch.Tensor, dict]:
        pairs = [self.train[i] for i in idxs]
        shared = self.cfg.dpo_shared_prefix
        batch = (shared_pair_tensors if shared else pair_tensors)(pairs)
        logps = shared_pair_logps if shared else pair_logps
        chosen, rejected, n_chosen, nll = logps(model, _to(batch, self.device), len(pairs))
        # real tokens through the model: the shared path runs each context once
        tokens = (
            batch["input_ids"].numel()
            if shared
            else sum(len(p.chosen) + len(p.rejected) for p in pairs)
        )
        ref_c, ref_r = self.ref["train"][0][idxs].to(chosen), self.ref["train"][1][idxs].to(chosen)
        loss, margin = dpo_loss(chosen, rejected, ref_c, ref_r, self.cfg.beta)
        if self.cfg.dpo_sft_weight:
            loss = loss + self.cfg.dpo_sft_weight * nll
        return loss, {
            "tokens": tokens,
            "padded": batch["input_ids"].numel() - tokens,
            "target_tokens": n_chosen,
            "reward_accuracy": round(float((margin > 0).float().mean()), 4),
            "margin": round(float(margin.mean()), 4),
        }

    def evaluate(self, model) -> dict:
        if not self.test:
            return {}
        ref_c, ref_r = self.ref["test"]

        def loss_of(idxs):
            pairs = [self.test[i] for i in idxs]
            c, r = _chosen_rejected(model, pairs, self.device, self.cfg.dpo_shared_prefix)
            return dpo_loss(c, r, ref_c[idxs].to(c), ref_r[idxs].to(c), self.cfg.beta)

        loss, m = _over_test_pairs(len(self.test), loss_of)
        return {
            "loss": loss,
            "reward_accuracy": round(float((m > 0).float().mean()), 4),
            "margin": round(float(m.mean()), 4),
        }


def _over_test_pairs(n: int, loss_of) -> tuple[float, torch.Tensor]:
    """A preference stage's held-out figures: `loss_of(idxs)` -> (mean loss, per-pair
    values) on chunks of `_EVAL_PAIRS` pairs; the loss averaged over all `n` pairs, and
    the values of every pair."""
    values, total = [], 0.0
    for start in range(0, n, _EVAL_PAIRS):
        idxs = list(range(start, min(start + _EVAL_PAIRS, n)))
        loss, v = loss_of(idxs)
        values.append(v)
        total += float(loss) * len(idxs)
    return round(total / n, 5), torch.cat(values)


class FTPOStage:
    """FTPO (`losses.ftpo_loss`) at each pair's divergence token against the reference's
    logits there (`ref`: {"train"/"test": [pairs, vocab]}, from `reference_logits`);
    only each pair's shared prefix runs through the model. Eval: loss, the share of
    pairs whose chosen token out-scores the rejected one, the mean logit gap."""

    name = "dpo"  # the preference stage, whichever its loss (checkpoints, resume)

    def __init__(
        self, cfg: TrainConfig, train: list[PairExample], test: list[PairExample], ref: dict, device
    ):
        self.cfg, self.train, self.test, self.ref, self.device = cfg, train, test, ref, device
        self.epochs, self.lr = cfg.dpo_epochs, cfg.dpo_learning_rate

    def micro_batches(self, epoch: int) -> list:
        return pair_batches(self.train, self.cfg, epoch)

    def _loss(self, model, pairs: list[PairExample], ref_logits: torch.Tensor):
        batch = _to(divergence_tensors(pairs), self.device)
        logits = divergence_logits(model, batch)
        loss, gap = ftpo_loss(
            logits,
            ref_logits,
            batch["chosen_tokens"],
            batch["rejected_tokens"],
            self.cfg.ftpo_margin,
            self.cfg.ftpo_target_weight,
            self.cfg.ftpo_nontarget_weight,
        )
        return loss, gap, batch["input_ids"].numel()

    def step(self, model, idxs) -> tuple[torch.Tensor, dict]:
        loss, gap, tokens = self._loss(
            model, [self.train[i] for i in idxs], self.ref["train"][idxs]
        )
        return loss, {
            "tokens": tokens,
            "target_tokens": len(idxs),
            "token_accuracy": round(float((gap > 0).float().mean()), 4),
            "logit_gap": round(float(gap.mean()), 4),
        }

    def evaluate(self, model) -> dict:
        if not self.test:
            return {}
        loss, g = _over_test_pairs(
            len(self.test),
            lambda idxs: self._loss(model, [self.test[i] for i in idxs], self.ref["test"][idxs])[
                :2
            ],
        )
        return {
            "loss": loss,
            "token_accuracy": round(float((g > 0).float().mean()), 4),
            "logit_gap": round(float(g.mean()), 4),
        }


class WithUnlikelihood:
    """A stage with sequence-level unlikelihood (Welleck et al. 2019) on top: every
    `--ul-every`th micro-batch also takes one context from the training dialogues (the
    text before a character turn), lets the model reply greedily (`--ul-tokens` at
    most, no gradient), marks the reply's tokens that repeat a 4-gram of the reply or
    of the dialogue's earlier character turns (`losses.repeat_mask`), and adds
    `--ul-weight` x -log(1 - p) on them (`losses.unlikelihood_loss`, with gradient).

    Why a wrapper, added to the stage's loss: it composes with SFT and DPO alike, with
    one optimizer and schedule, where the paper alternated UL and MLE updates. Greedy,
    as the paper's continuations: decoding's loops are worst there, and no random
    numbers are drawn, so a resumed run replays the same replies. The context is a
    seeded pick per (epoch, micro-batch), replayed on `--resume` like the data order.
    Not handled: the character's card greeting is not among the earlier turns (it is
    context without labels); a reply that runs into the next turn's text for a format
    whose stop string is not a token (only the eos ids stop it)."""

    def __init__(self, stage, cfg: TrainConfig, dialogues: list[Example], stop: set[int], device):
        self.stage, self.cfg, self.dialogues = stage, cfg, dialogues
        self.stop, self.device = stop, device
        self.name, self.epochs, self.lr = stage.name, stage.epochs, stage.lr
        # contexts that leave room for the reply within --max-length
        self.contexts = [
            (e, cut) for e, cut in reply_starts(dialogues) if cut + cfg.ul_tokens <= cfg.max_length
        ]

    def micro_batches(self, epoch: int) -> list:
        every = self.cfg.ul_every
        return [
            (spec, self._pick(epoch, i) if self.contexts and i % every == 0 else None)
            for i, spec in enumerate(self.stage.micro_batches(epoch))
        ]

    def _pick(self, epoch: int, i: int) -> tuple[int, int]:
        return random.Random(f"{self.cfg.seed}-{self.name}-{epoch}-{i}").choice(self.contexts)

    def step(self, model, spec) -> tuple[torch.Tensor, dict]:
        inner, context = spec
        loss, stats = self.stage.step(model, inner)
        if context is None:
            return loss, stats
        e, cut = context
        example = self.dialogues[e]
        ids = example.input_ids[:cut]
        reply = greedy_continuation(model, ids, self.cfg.ul_tokens, self.stop)
        seen = {
            tuple(run[j : j + _UL_NGRAM])
            for run in _label_runs(example, cut)
            for j in range(len(run) - _UL_NGRAM + 1)
        }
        mask = repeat_mask(reply, _UL_NGRAM, seen)
        stats = {**stats, "ul_repeat_share": round(sum(mask) / max(1, len(reply)), 4)}
        if not any(mask):
            return loss, {**stats, "ul_loss": 0.0}
        labels = [IGNORE] * cut + [t if m else IGNORE for t, m in zip(reply, mask)]
        batch = collate_packed([[Example(ids + reply, labels)]])
        ul = unlikelihood_loss(model, _to(batch, self.device), len(reply))
        stats["tokens"] += len(ids) + len(reply)
        stats["ul_loss"] = round(float(ul.detach()), 5)
        return loss + self.cfg.ul_weight * ul, stats

    def evaluate(self, model) -> dict:
        return self.stage.evaluate(model)


def _label_runs(example: Example, end: int) -> list[list[int]]:
    """The runs of labelled tokens (the character turns) before position `end`."""
    runs, cur = [], []
    for t in example.labels[:end]:
        if t != IGNORE:
            cur.append(t)
        elif cur:
            runs.append(cur)
            cur = []
    return runs + ([cur] if cur else [])


@torch.no_grad()
def reference_logps(
    model, pairs: list[PairExample], device, bar, shared: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen reference of DPO: each pair's summed chosen and rejected reply
    log-probabilities under `model` as it is now (fp32, on the CPU); `bar` counts pairs."""
    was_training = model.training
    model.eval()
    chosen, rejected = [], []
    for start in range(0, len(pairs), _EVAL_PAIRS):
        c, r = _chosen_rejected(model, pairs[start : start + _EVAL_PAIRS], device, shared)
        chosen.append(c.float().cpu())
        rejected.append(r.float().cpu())
        bar.update(len(c))
    model.train(was_training)
    if not pairs:
        return torch.zeros(0), torch.zeros(0)
    return torch.cat(chosen), torch.cat(rejected)


@torch.no_grad()
def reference_logits(model, pairs: list[PairExample], device, bar) -> torch.Tensor:
    """The frozen reference of FTPO: each pair's logits at its divergence point under
    `model` as it is now ([pairs, vocab], fp32, on the CPU: 0.2 MB a pair at a
    49152-token vocabulary); `bar` counts pairs."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(pairs), _EVAL_PAIRS):
        batch = divergence_tensors(pairs[start : start + _EVAL_PAIRS])
        out.append(divergence_logits(model, _to(batch, device)).cpu())
        bar.update(len(out[-1]))
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def _chosen_rejected(model, pairs: list[PairExample], device, shared: bool = False):
    if shared:
        batch, logps = shared_pair_tensors(pairs), shared_pair_logps
    else:
        batch, logps = pair_tensors(pairs), pair_logps
    chosen, rejected, *_ = logps(model, _to(batch, device), len(pairs))
    return chosen, rejected


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}
