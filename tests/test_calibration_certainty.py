"""bench/persona_calibration.py's recall apart on the positives a reader was sure of and on
those with a doubt in the note."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).parent.parent / "bench" / "persona_calibration.py"


def _module():
    spec = importlib.util.spec_from_file_location("persona_calibration", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recall_is_split_by_the_readers_doubt():
    calibration = _module()
    rows = [
        {"label": ["wrong_identity"], "note": "says she is 22"},
        {"label": ["wrong_identity"], "note": "'a sailor'; doubt: could be a hobby"},
        {"label": ["wrong_identity"], "note": "Borderline: a trade in passing"},
        {"label": [], "note": "doubt: none of the labels"},
        {"label": ["drift"]},
    ]
    flags = [["wrong_identity"], [], ["wrong_identity"], ["wrong_identity"], []]
    got = calibration.recall_by_certainty(rows, flags)
    assert got["wrong_identity"]["sure"] == {"labelled": 1, "true_positives": 1, "recall": 1.0}
    assert got["wrong_identity"]["doubted"] == {
        "labelled": 2,
        "true_positives": 1,
        "recall": 0.5,
    }
    assert got["drift"]["sure"]["recall"] == 0.0 and got["drift"]["doubted"]["recall"] is None
