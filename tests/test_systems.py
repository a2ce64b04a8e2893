"""The eval's systems: parsing '--system' specs and decoding terms, their names, and the
labels and references of the prompt axis. Pure functions, no model."""

import pytest

from rolegen.config.systems import (
    DEFAULT_SYSTEMS,
    decoding_name,
    label,
    parse_decoding,
    parse_system,
    references,
    split_label,
)
from rolegen.errors import RolegenError


def test_base_alone_is_the_base_model_with_no_decoding_settings():
    system = parse_system("base")
    assert (system.name, system.adapter, system.sampling) == ("base", False, {})


def test_adapter_with_terms_casts_each_to_its_request_field():
    system = parse_system("adapter+repetition-penalty=1.05+no-repeat-ngram=3")
    assert system.adapter is True
    assert system.sampling == {"repetition_penalty": 1.05, "no_repeat_ngram": 3}
    assert isinstance(system.sampling["no_repeat_ngram"], int)


def test_spaces_and_empty_terms_do_not_change_the_name():
    system = parse_system(" adapter + frequency-penalty=0.5 + ")
    assert system.name == "adapter+frequency-penalty=0.5"
    assert system.sampling == {"frequency_penalty": 0.5}


def test_every_default_system_parses():
    names = [parse_system(spec).name for spec in DEFAULT_SYSTEMS]
    assert names == DEFAULT_SYSTEMS
    assert [parse_system(spec).adapter for spec in DEFAULT_SYSTEMS].count(True) == 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "--system '': must start with 'base' or 'adapter'"),
        ("model+frequency-penalty=0.5", "--system 'model+frequency-penalty=0.5': must start"),
        ("base+top-k=5", "--system 'base+top-k=5': unknown term 'top-k=5'"),
        ("base+frequency-penalty", "unknown term 'frequency-penalty' (use repetition-penalty"),
        ("base+frequency-penalty=high", "--system 'base+frequency-penalty=high': 'high' is not"),
        ("base+no-repeat-ngram=2.5", "'2.5' is not a"),
        ("base+presence-penalty=nan", "presence-penalty must be a finite number, got nan"),
        ("base+no-repeat-ngram=0", "no-repeat-ngram bans n-grams of N >= 1 words, got 0"),
        ("base+repetition-penalty=0", "repetition-penalty must be above 0 (1 = off), got 0"),
    ],
)
def test_bad_specs_are_refused_in_one_line_naming_the_flag(spec, message):
    with pytest.raises(RolegenError) as error:
        parse_system(spec)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_decoding_errors_name_the_flag_they_were_given_by():
    with pytest.raises(RolegenError, match=r"^--distill: unknown term 'temperature=2'"):
        parse_decoding(["temperature=2"], "--distill")


def test_decoding_name_writes_the_terms_back():
    terms = ["frequency-penalty=0.5", "no-repeat-ngram=3"]
    assert decoding_name(parse_decoding(terms, "--distill")) == "+".join(terms)


def test_decoding_name_is_plain_without_settings_and_ignores_other_fields():
    assert decoding_name({}) == "plain"
    assert decoding_name({"temperature": 0.7, "presence_penalty": 0.2}) == "presence-penalty=0.2"


def test_a_system_under_rolegens_prompt_keeps_its_bare_name():
    assert label("base", "rolegen") == "base"
    assert split_label("base") == ("base", "rolegen")


def test_a_system_under_another_prompt_is_labelled_with_it_and_splits_back():
    name = label("adapter+frequency-penalty=0.5", "plain")
    assert name == "adapter+frequency-penalty=0.5 @ plain"
    assert split_label(name) == ("adapter+frequency-penalty=0.5", "plain")


def test_each_system_is_compared_with_base_under_its_own_prompt():
    names = ["base", "adapter", "base @ plain", "adapter @ plain"]
    assert references(names, "base") == {
        "base": "base",
        "adapter": "base",
        "base @ plain": "base @ plain",
        "adapter @ plain": "base @ plain",
    }


def test_a_prompt_without_its_base_falls_back_to_the_reference():
    names = ["base", "adapter", "adapter @ plain"]
    assert references(names, "base")["adapter @ plain"] == "base"
