"""Run configuration as typed dataclasses: settings only.

A whole run can live in one YAML file (`--config run.yaml`); command-line flags
override it (options.py reads both). Each field's `help` is also its `--flag`'s
help text, so the CLI and the config file cannot drift apart. Settings that
several commands share are one section each, combined per command the way TRL
combines `ScriptArguments`, `DPOConfig` and `ModelConfig`: `ModelConfig` (which
model, how its prompts are rendered) and `EngineConfig` (what runs it) go into
both `generate` and `eval`, flat, so their flags and YAML keys are plain
(`--model`, `engine:`). The sections are in shared.py, each command's config in a
module of its name (generate.py, filter.py, train.py, evaluate.py, pipeline.py); each
config checks itself (`validate()`) before anything loads.
"""

from rolegen.config.evaluate import EvalConfig
from rolegen.config.filter import FilterConfig
from rolegen.config.generate import GenerateConfig
from rolegen.config.pipeline import PipelineConfig
from rolegen.config.shared import ClusterConfig, EngineConfig, ModelConfig, SamplingConfig
from rolegen.config.train import LoraSettings, TrainConfig

__all__ = [
    "ClusterConfig",
    "EngineConfig",
    "EvalConfig",
    "FilterConfig",
    "GenerateConfig",
    "LoraSettings",
    "ModelConfig",
    "PipelineConfig",
    "SamplingConfig",
    "TrainConfig",
]
