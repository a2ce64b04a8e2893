"""The checks: what is wrong with a character turn (identity echo, wrong identity, drift,
acting for the user, repetition, loops; `turns.py`, its array part `repetition.py` over
the compiled kernels of `_textkernels.py` and `_kernelparts.py`), the phrases and card facts they read
(`phrases.py`, `speech.py`, `voice.py`, `persona_facts.py`, `persona_words.py`, `ages.py`,
`self_claims.py`, `contradictions.py`, `name_spellings.py`, `user_acts.py`, `tics.py`),
the sentence embedder of the paraphrase check (`embedder.py`), and the filter's dataset
built from checked dialogues with its statistics (`dataset.py`, `dataset_stats.py`). It
imports `cards`, `config` and the basics; never generation, training, evaluation or runs.
"""
