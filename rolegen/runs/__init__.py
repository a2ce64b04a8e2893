"""Run folders: `dialogues.jsonl` appended a dialogue at a time, `manifest.json`, the run
lock (`folders.py`), reading dialogue records with their limits (`records.py`) and
SillyTavern chats in and out (`sillytavern.py`). It imports `cards` and the basics.
"""
