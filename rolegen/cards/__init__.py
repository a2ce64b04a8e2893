"""Character cards: reading a `--persona` value (shipped name, YAML, Character Card V2
JSON or PNG, a folder) into `Persona`s with their lorebooks and user personas
(`files.py`, `personas.py`; lorebooks in `lorebook.py`, Character's Notes in
`depth_prompts.py`), and writing a persona back as a V2 card (`export.py`). It
imports only the basics (`errors`, `bounded`, `resources`) and `config`.
"""
