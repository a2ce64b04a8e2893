"""Evaluation: per-turn rows and per-system figures with intervals (`metrics.py`,
`matched.py`, `depth.py`), the model-based scores (`model_scores.py`: fluency,
relevance, paraphrase), persona distinctiveness, the model judge, the labelled turns the
checks are calibrated on (`labels.py`), the eval suite and plan (`suite.py`), dialogues
made elsewhere (`data_source.py`), the scoring of a run (`scoring.py`), and the report
(`report.py` over `headline.py`, `report_tables.py` and `depth_report.py`).
It sits on top of the stages and may import any of them; only recipes and the CLI import it.
"""
