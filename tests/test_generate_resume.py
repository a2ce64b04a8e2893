"""`rolegen generate --resume` refuses inputs whose content changed since the run
started: an edited `--templates` template, a card added to a `--persona` folder."""

import shutil

from click.testing import CliRunner

from rolegen.cli import main
from rolegen.resources import personas_dir, templates_dir

FAST = ["--max-new-tokens", "8", "--user-max-new-tokens", "8", "--max-resamples", "1"]


def _generate(tiny_model, out, *args):
    common = ["--dialogues", "1", "--turns", "1", "--model", str(tiny_model), "--engine", "hf"]
    return CliRunner().invoke(main, ["generate", *common, "--out", str(out), *FAST, *args])


def test_resume_refuses_an_edited_template_and_keeps_what_was_written(tiny_model, tmp_path):
    templates = tmp_path / "tpl"
    templates.mkdir()
    system = templates / "character_system.jinja"
    shutil.copy(templates_dir() / "character_system.jinja", system)
    out = tmp_path / "run"
    args = ("--persona", "chef-pip", "--templates", str(templates))
    first = _generate(tiny_model, out, *args)
    assert first.exit_code == 0, first.output
    written = (out / "dialogues.jsonl").read_bytes()

    system.write_text("Stay terse.\n" + system.read_text())
    refused = _generate(tiny_model, out, *args, "--resume")
    assert refused.exit_code == 2
    # the last line is the whole message
    assert f"--resume: {system} changed since the run started" in refused.output.splitlines()[-1]
    assert (out / "dialogues.jsonl").read_bytes() == written


def test_resume_refuses_a_card_added_to_the_persona_folder(tiny_model, tmp_path):
    cards = tmp_path / "cards"
    cards.mkdir()
    shutil.copy(personas_dir() / "chef-pip.yaml", cards)
    out = tmp_path / "run"
    first = _generate(tiny_model, out, "--persona", str(cards))
    assert first.exit_code == 0, first.output
    written = (out / "dialogues.jsonl").read_bytes()

    shutil.copy(personas_dir() / "sir-aldric.yaml", cards)
    refused = _generate(tiny_model, out, "--persona", str(cards), "--resume")
    assert refused.exit_code == 2
    assert f"--resume: folder {cards}/ changed since the run started (sir-aldric.yaml added)" in (
        refused.output
    )
    assert (out / "dialogues.jsonl").read_bytes() == written
