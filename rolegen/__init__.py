"""rolegen: roleplay datasets from persona cards, cleaned of repetition.

The packages, by stage: `cards` (character cards in), `generation` (prompts, the turn
loop, engines), `checks` (what is wrong with a turn, the filter's dataset), `training`
(LoRA fine-tunes), `evaluation` (metrics, report), `runs` (run folders and records),
with `config` (settings) and `models` (checkpoints, adapters) beneath them and
`recipes` (one per command) and `cli` on top. The basics every package may import:
`errors`, `bounded` (limited JSON/YAML reading), `resources` (shipped files), `urls`.
"""

__version__ = "0.1.0"
