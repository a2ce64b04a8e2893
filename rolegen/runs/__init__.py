"""Run folders: `dialogues.jsonl` appended a dialogue at a time and `manifest.json`
(`folders.py`), the output folder and its lock (`out_dirs.py`), reading dialogue records
with their limits (`records.py`, each record checked by `validation.py`) and SillyTavern chats in (`sillytavern.py`) and out
(`sillytavern_export.py`). It imports `cards` and the basics.
"""
