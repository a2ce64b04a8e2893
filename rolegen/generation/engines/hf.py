"""The transformers engine: left-padded batched `generate`, same interface as vLLM.

Requests that share their sampling settings run together in batches of
`batch_size` (frequency/presence penalties and no-repeat n-grams are per row).
An adapter is merged in memory; requests that ask for the base model run with
the adapter disabled. Sampling is seeded per batch from the first request's seed, so a
rerun with the same requests gives the same text.
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

import torch
from transformers import StoppingCriteria

from rolegen.generation.engines.base import Completion, EngineOptions, Request
from rolegen.generation.engines.no_repeat import CountPenalty, NoRepeatInReply


def _inference_dtype(option: str) -> torch.dtype:
    if option not in ("auto", ""):
        return getattr(torch, option)
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32  # bf16 matmuls on most CPUs are slower than fp32 ones


class _StopStrings(StoppingCriteria):
    """Per-row stop strings, checked on the decoded tail of each row.

    transformers' own `stop_strings` precomputes tables over the whole vocabulary
    for every distinct set of strings (seconds per call with a 49k vocabulary), and
    takes one set per batch; rows here carry their own (speaker names differ).
    """

    def __init__(self, tokenizer, stops: list[list[str]], prompt_width: int):
        self.tokenizer = tokenizer
        self.stops = stops
        self.start = prompt_width
        self.tail = max((len(s) for row in stops for s in row), default=1) + 8

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for row, stops in enumerate(self.stops):
            if stops:
                text = self.tokenizer.decode(input_ids[row, self.start :][-self.tail :])
                done[row] = any(s in text for s in stops)
        return done


def _merged(model) -> bool:
    return any(getattr(m, "merged", False) for m in model.modules())


class HFEngine:
    name = "hf"

    def __init__(self, model_path: Path, options: EngineOptions):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if options.tensor_parallel_size > 1:
            from rolegen.errors import RolegenError

            raise RolegenError("--tensor-parallel needs --engine vllm")
        self.options = options
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=_inference_dtype(options.dtype)
        )
        if options.lora_path:
            from peft import PeftModel

            # merged in memory: generation then runs at the base model's speed; requests
            # with lora=False run under `disable_adapter` (PEFT unmerges for them)
            self.model = PeftModel.from_pretrained(self.model, options.lora_path)
            self.model.merge_adapter()
        self.model.to(self.device).eval()
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = options.eos_token_ids[0] if options.eos_token_ids else 0
        self.eos_ids = options.eos_token_ids or [self.tokenizer.eos_token_id]

    def generate(self, requests: list[Request]) -> list[Completion]:
        out: list[Completion | None] = [None] * len(requests)

        def settings(i: int):
            r = requests[i]
            # every decoding setting and the group: one eval system's requests under one
            # prompt form their own batches, so its text does not depend on the other
            # systems and prompts run beside it
            return (
                r.group,
                r.temperature,
                r.top_p,
                r.repetition_penalty,
                r.frequency_penalty,
                r.presence_penalty,
                r.no_repeat_ngram,
                r.max_tokens,
                r.lora,
            )

        order = sorted(range(len(requests)), key=settings)
        for _, group in groupby(order, key=settings):
            group = list(group)
            for start in range(0, len(group), self.options.batch_size):
                chunk = group[start : start + self.options.batch_size]
                for i, completion in zip(chunk, self._generate_batch([requests[i] for i in chunk])):
                    out[i] = completion
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def _generate_batch(self, batch: list[Request]) -> list[Completion]:
        first = batch[0]
        if hasattr(self.model, "disable_adapter") and not first.lora:
            # PEFT unmerges the adapter when it is disabled; it is merged again below
            with self.model.disable_adapter():
                return self._generate_batch_merged(batch)
        if hasattr(self.model, "merge_adapter") and not _merged(self.model):
            self.model.merge_adapter()
        return self._generate_batch_merged(batch)

    def _generate_batch_merged(self, batch: list[Request]) -> list[Completion]:
        first = batch[0]
        width = max(len(r.prompt_ids) for r in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, r in enumerate(batch):  # left padding: the prompts end where generation starts
            ids[row, width - len(r.prompt_ids) :] = torch.tensor(r.prompt_ids)
            mask[row, width - len(r.prompt_ids) :] = 1
        if first.seed is not None:
            torch.manual_seed(first.seed)
        sample = first.temperature > 0
        kwargs = dict(
            max_new_tokens=first.max_tokens,
            do_sample=sample,
            repetition_penalty=first.repetition_penalty,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
        )
        if sample:
            kwargs.update(temperature=first.temperature, top_p=first.top_p, top_k=0)
        processors = []
        if any(r.no_repeat_ngram for r in batch):
            processors.append(NoRepeatInReply([r.no_repeat_ngram for r in batch], width))
        if any(r.frequency_penalty or r.presence_penalty for r in batch):
            processors.append(
                CountPenalty(
                    [r.frequency_penalty for r in batch], [r.presence_penalty for r in batch], width
                )
            )
        if processors:
            kwargs["logits_processor"] = processors
        if any(r.stop for r in batch):
            kwargs["stopping_criteria"] = [
                _StopStrings(self.tokenizer, [r.stop for r in batch], width)
            ]
        generated = self.model.generate(
            input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kwargs
        )[:, width:].tolist()

        completions = []
        for r, tokens in zip(batch, generated):
            n, hit_eos = len(tokens), False
            for j, tok in enumerate(tokens):  # cut at eos, drop the padding after it
                if tok in self.eos_ids:
                    n, hit_eos = j, True
                    break
            text = self.tokenizer.decode(tokens[:n], skip_special_tokens=True)
            hit_stop = False
            for s in r.stop:  # generation stops after a stop string; the text keeps it
                k = text.find(s)
                if k >= 0:
                    text, hit_stop = text[:k], True
            reason = "stop" if hit_eos or hit_stop or n < first.max_tokens else "length"
            completions.append(Completion(text=text, n_tokens=n + hit_eos, finish_reason=reason))
        return completions

    def close(self) -> None:
        del self.model
