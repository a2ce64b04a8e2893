"""Generation: cards and templates into prompts (`templates.py`, `prompts.py`), the turn
loop that advances a batch of dialogues one engine call per step and resamples bad turns
(`dialogue.py`, `dialogue_state.py`, `replies.py`), the engines behind it (`engines/`:
vLLM, transformers, an OpenAI-compatible server), where batches run (`cluster.py`,
`replicas.py`), the run set-up generate and eval share (`session.py`), and generate's
plan and manifest (`plan.py`, `run_report.py`). It may import `checks`, `runs`, `cards`,
`config`, `models` and the basics.
"""
