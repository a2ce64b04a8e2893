"""Rendering and label masking of training examples."""

from __future__ import annotations

from support import DIALOGUE

from rolegen.generation.templates import ChatTemplateFormat, Templates
from rolegen.training.rendering import IGNORE, Example, Renderer


def _labelled_runs(example: Example, tokenizer) -> list[str]:
    runs, cur = [], []
    for i, label in zip(example.input_ids, example.labels):
        if label != IGNORE:
            assert label == i
            cur.append(i)
        elif cur:
            runs.append(tokenizer.decode(cur))
            cur = []
    if cur:
        runs.append(tokenizer.decode(cur))
    return runs


def test_loss_only_on_character_replies_and_their_end_of_turn(tokenizer):
    example = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 4096).sft_example(
        DIALOGUE, ("Mara", "Ann")
    )
    # The greeting is the card's text, not a reply: masked like system and user turns.
    assert _labelled_runs(example, tokenizer) == [
        "Hello, traveler.<|im_end|>",
        "North, into the storm.<|im_end|>",
    ]
    # Exact positions: the reply tokens sit right after "<|im_start|>assistant\n".
    text = tokenizer.apply_chat_template(DIALOGUE, tokenize=False)
    ids = tokenizer(text).input_ids
    assert example.input_ids == ids
    reply = tokenizer("Hello, traveler.<|im_end|>").input_ids
    header = tokenizer("<|im_start|>assistant\n").input_ids
    starts = [
        i + len(header)
        for i in range(len(ids))
        if ids[i : i + len(header)] == header and ids[i + len(header) :][: len(reply)] == reply
    ]
    assert len(starts) == 1
    s = starts[0]
    assert example.labels[s - 1] == IGNORE
    assert example.labels[s : s + len(reply)] == reply
    assert example.labels[s + len(reply)] == IGNORE  # the newline after <|im_end|>
    assert example.target_tokens == len(reply) + len(
        tokenizer("North, into the storm.<|im_end|>").input_ids
    )
    assert tokenizer.eos_token_id in [x for x in example.labels if x != IGNORE]


def test_format_template_labels_end_with_the_turn_marker(tokenizer):
    fmt = Templates().prompt_format("alpaca-roleplay")
    example = Renderer(fmt, tokenizer, 4096).sft_example(DIALOGUE, ("Mara", "Ann"))
    runs = _labelled_runs(example, tokenizer)
    # The first reply is followed by the next user turn: its marker is learned as the stop.
    assert runs[0] == " Hello, traveler.\n\n### Input:"
    assert runs[1].strip() == "North, into the storm."
    assert "Ann: Hi there." not in "".join(runs)


def test_truncation_drops_the_oldest_exchanges_whole(tokenizer):
    long = [*DIALOGUE]
    for k in range(20):
        long += [
            {"role": "user", "content": f"Question number {k} about the voyage ahead?"},
            {"role": "assistant", "content": f"Answer number {k}: the winds are kind today."},
        ]
    renderer = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 300)
    example = renderer.sft_example(long, ("Mara", "Ann"))
    assert len(example) <= 300
    assert example.dropped_messages > 0 and example.dropped_messages % 2 == 0
    text = tokenizer.decode(example.input_ids)
    assert "captain of the Gale" in text and "Welcome aboard" in text  # system + greeting stay
    assert "Answer number 19" in text  # the newest exchange stays
    assert "Question number 0 " not in text
    # Nothing fits: None, not a half turn.
    assert (
        Renderer(ChatTemplateFormat(tokenizer), tokenizer, 20).sft_example(long, ("M", "A")) is None
    )


def _long_dialogue(exchanges: int) -> list[dict]:
    long = [*DIALOGUE]
    for k in range(exchanges):
        long += [
            {"role": "user", "content": f"Question number {k} about the voyage ahead?"},
            {"role": "assistant", "content": f"Answer number {k}: the winds are kind today."},
        ]
    return long


def test_a_dialogue_that_fits_is_one_window_equal_to_the_whole_example(tokenizer):
    renderer = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 4096)
    (window,) = renderer.sft_windows(_long_dialogue(3), ("Mara", "Ann"))
    whole = renderer.sft_example(_long_dialogue(3), ("Mara", "Ann"))
    assert (window.input_ids, window.labels) == (whole.input_ids, whole.labels)


def test_windows_learn_every_reply_once_each_with_history_before_it(tokenizer):
    renderer = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 300)
    long = _long_dialogue(20)
    windows = renderer.sft_windows(long, ("Mara", "Ann"))
    assert len(windows) > 2
    learned = [run for w in windows for run in _labelled_runs(w, tokenizer)]
    replies = [m["content"] for m in long[2:] if m["role"] == "assistant"]
    # each reply (and its end-of-turn marker) learned in exactly one window, in order
    assert [r.removesuffix("<|im_end|>") for r in learned] == replies
    for w in windows:
        text = tokenizer.decode(w.input_ids)
        assert len(w) <= 300
        assert "captain of the Gale" in text and "Welcome aboard" in text
    for w in windows[1:]:
        first = _labelled_runs(w, tokenizer)[0].removesuffix("<|im_end|>")
        k = int(first.split()[2].rstrip(":"))
        # the reply before the first one learned is in the window, as history
        assert f"Answer number {k - 1}:" in tokenizer.decode(w.input_ids)
    assert sum(w.dropped_messages for w in windows) == 0


def test_windows_are_empty_when_not_even_one_exchange_fits(tokenizer):
    renderer = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 20)
    assert renderer.sft_windows(_long_dialogue(5), ("M", "A")) == []


def test_pair_example_scores_only_the_reply(tokenizer):
    renderer = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 4096)
    pair = renderer.pair_example(
        DIALOGUE[:5], "Due north.", "I am Mara. I am Mara.", ("Mara", "Ann")
    )
    assert _labelled_runs(pair.chosen, tokenizer) == ["Due north.<|im_end|>"]
    assert _labelled_runs(pair.rejected, tokenizer) == ["I am Mara. I am Mara.<|im_end|>"]
    n = next(i for i, x in enumerate(pair.chosen.labels) if x != IGNORE)
    assert n == next(i for i, x in enumerate(pair.rejected.labels) if x != IGNORE)
    assert pair.chosen.input_ids[:n] == pair.rejected.input_ids[:n]  # same context


def test_the_drops_skipped_by_token_count_are_the_ones_that_cannot_fit(tokenizer, monkeypatch):
    """Encoding starts dropping old exchanges past those whose text alone is too long;
    the windows are the ones a drop-by-drop search from the start finds."""
    import random

    rng = random.Random(1)
    renderer = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 300)
    for _ in range(5):
        chat = [DIALOGUE[0], {"role": "assistant", "content": "Welcome aboard."}]
        for _ in range(rng.randint(3, 25)):
            chat.append({"role": "user", "content": " ".join(["sail"] * rng.randint(1, 60))})
            chat.append({"role": "assistant", "content": " ".join(["wind"] * rng.randint(0, 90))})
        fast = renderer.sft_windows(chat, ("Mara", "Ann"))
        with monkeypatch.context() as m:
            m.setattr(Renderer, "_cannot_fit_before", lambda self, *args: 0)
            slow = renderer.sft_windows(chat, ("Mara", "Ann"))
        assert fast and [(e.input_ids, e.labels) for e in fast] == [
            (e.input_ids, e.labels) for e in slow
        ]


def test_a_pairs_drops_skipped_by_token_count_are_the_ones_that_cannot_fit(tokenizer, monkeypatch):
    """A preference pair's context drops old messages past those whose text alone, with
    the longer reply, is too long; the pair is the one a drop-by-drop search finds, and
    one that fits nowhere is None either way."""
    import random

    rng = random.Random(2)
    renderer = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 300)
    fitted_after_drops = fitted_nowhere = 0
    for k in range(12):
        prompt = [DIALOGUE[0], {"role": "assistant", "content": "Welcome aboard."}]
        for _ in range(rng.randint(0, 25)):
            prompt.append({"role": "user", "content": " ".join(["sail"] * rng.randint(1, 60))})
            prompt.append({"role": "assistant", "content": " ".join(["wind"] * rng.randint(0, 90))})
        prompt.append({"role": "user", "content": " ".join(["port"] * rng.randint(1, 40))})
        chosen = " ".join(["calm"] * rng.randint(1, 120))
        rejected = " ".join(["gale"] * (400 if k % 4 == 0 else rng.randint(1, 60)))
        fast = renderer.pair_example(prompt, chosen, rejected, ("Mara", "Ann"))
        with monkeypatch.context() as m:
            m.setattr(Renderer, "_cannot_fit_before", lambda self, *args: 0)
            slow = renderer.pair_example(prompt, chosen, rejected, ("Mara", "Ann"))
        assert (fast is None) == (slow is None)
        fitted_nowhere += fast is None
        if fast is not None:
            fitted_after_drops += fast.chosen.dropped_messages > 0
            for a, b in ((fast.chosen, slow.chosen), (fast.rejected, slow.rejected)):
                assert (a.input_ids, a.labels, a.dropped_messages) == (
                    b.input_ids,
                    b.labels,
                    b.dropped_messages,
                )
    assert fitted_after_drops >= 3 and fitted_nowhere == 3  # both kinds were met
