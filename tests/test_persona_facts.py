"""Card facts read from a card's own fields, and replies that contradict them."""

import pytest

from rolegen.checks.contradictions import contradictions
from rolegen.checks.persona_facts import CardFacts, card_facts
from rolegen.checks.phrases import identity
from rolegen.checks.self_claims import claims
from rolegen.checks.speech import speech_and_narration
from rolegen.checks.turns import DialogueTurns, check_dialogues

BAKER = card_facts(
    "Nonna Rosa",
    "Nonna Rosa is an eighty-year-old Sicilian baker. She has run the bakery on Via Roma "
    "for fifty years and still kneads every loaf by hand.",
    "Warm, stubborn, proud of her bread.",
)
SHIP_AI = card_facts(
    "ORIEL",
    "ORIEL is the artificial intelligence that runs the freighter Thessaly Bright. It is "
    "not human and has no body. It has no gender and refers to itself as it.",
    "Calm and exact.",
)
SWORDSWOMAN = card_facts(
    "Kestra",
    "Kestra is a 31-year-old swordswoman who guards the mountain pass. She fights with two blades.",
)
FOX = card_facts("胡小满", "胡小满是一只会说话的小狐狸，女孩，今年十二岁。她在森林里当邮差。")
EMBROIDERER = card_facts("沈青禾", "沈青禾是一位四十三岁的刺绣师，女性。她是普通人。")
OCTOPUS = card_facts(
    "Barnaby",
    "Barnaby is an octopus who keeps the tide-pool lending library. He is four years old.",
)
JESTER = card_facts(
    "Tumbrel",
    "Tumbrel is a clockwork automaton who has served as court jester for forty-four years, "
    "ever since a horologist wound it for the first time.",
)
GIRL = card_facts("Ottilie", "Ottilie is an eleven-year-old girl who draws maps for the harbour.")
GHOST = card_facts(
    "Lady Elspeth",
    "Lady Elspeth is the ghost of a harpsichord teacher who died at the age of thirty-eight.",
)

PHYSICIAN = card_facts("Dr Amara", "Dr Amara is a nurse at the harbour clinic. She is 52.")
GHOST_WITHOUT_TRADE = card_facts(
    "Old Fen", "Old Fen is a marsh spirit who keeps the ford. He does not count years."
)


def test_facts_come_from_the_cards_own_fields_in_english_and_chinese():
    assert (BAKER.sex, BAKER.ages, BAKER.kind, BAKER.trades) == (
        "female",
        (80.0,),
        "human",  # no kind is stated, and "she": a person
        ("food",),
    )
    assert (SHIP_AI.sex, SHIP_AI.kind) == ("none", "artificial")
    assert (FOX.sex, FOX.ages, FOX.kind) == ("female", (12.0,), "animal")
    assert (EMBROIDERER.ages, EMBROIDERER.kind, EMBROIDERER.trades) == (
        (43.0,),
        "human",
        ("craft",),
    )


def test_a_kind_mentioned_but_not_the_characters_is_not_its_kind():
    hana = card_facts("Hana", "Hana owns a tea house. A cat named Mochi sleeps on the sill.")
    pip = card_facts("Pip", "Pip is a 14-year-old boy who runs messages by pigeon.")
    assert hana.kind is None  # nothing says what Hana is, not even a pronoun
    assert pip.kind == "human"


def test_durations_are_not_ages():
    card = card_facts("Odile", "Odile has kept bees for 40 years. In her seventies now.")
    assert card.ages == (75.0,)


def test_a_chinese_name_gets_its_pinyin_as_aliases():
    assert "Shen Qinghe" in EMBROIDERER.aliases and "Qinghe" in EMBROIDERER.aliases
    assert card_facts("杉浦ふみ", "ふみは三十八歳。").aliases == ()  # Japanese: no pinyin
    who = identity("I'm Shen Qinghe, and this is my workshop.", "沈青禾", EMBROIDERER.aliases)
    assert (who.own_intro, who.other_intro) == (True, False)


def test_a_made_thing_has_the_age_of_its_service_since_it_was_made():
    assert JESTER.ages == (44.0,)
    assert OCTOPUS.species == ("octopus",)


def test_ages_kinds_and_trades_said_in_other_ways():
    ocularist = card_facts(
        "Elias", "Elias is a man of thirty-four, an ocularist.", tags=["victorian"]
    )
    android = card_facts(
        "TALLOW",
        "TALLOW is an artificial being: a tall maintenance unit. It came off the fabrication "
        "line nineteen years ago. It is deeply interested in the fact that humans can eat.",
        tags=["space", "city", "farmer"],
    )
    assert ocularist.ages == (34.0,) and ocularist.trades == ("craft",)
    assert (android.ages, android.kind) == ((19.0,), "artificial")
    assert android.trades == ("land",)  # a tag names the trade
    assert card_facts("Lord Ashby", "He keeps the hall.").trades == ("royalty",)  # the name
    # a tag that names a place is no kind of being
    assert card_facts("Mo", "Mo runs a stall.", tags=["city", "fox"]).kind == "animal"
    # a plural tag is what the card is about: a beekeeper is no bee
    beekeeper = card_facts("Odile", "She keeps forty beehives.", tags=["rural", "bees"])
    assert beekeeper.kind == "human" and beekeeper.species == ("bee",)


def test_ages_in_long_words_in_winters_and_in_italian():
    from rolegen.checks.ages import ages

    assert ages("built a hundred and twelve years ago") == [112.0]  # not 12
    assert ages("I am one hundred and twenty years old") == [120.0]
    assert ages("she is over two thousand winters old") == [2000.0]
    assert ages("è una donna di trentanove anni") == [39.0]
    assert ages("ha 39 anni") == [39.0]
    assert ages("twenty-two years old") == [22.0] and ages("quatre-vingts ans") == [80.0]
    assert _wrong(BAKER, "I'm a hundred and twelve years old, dear.") == ["age"]
    assert _wrong(BAKER, "I'm eighty winters old, dear.") == []


def test_an_alien_is_no_human():
    alien = card_facts("Tesk", "Tesk is a Vell'ari, a four-armed amphibious alien. She cooks.")
    assert alien.kind == "nonhuman"
    assert _wrong(alien, "I'm a human, like you.") == ["kind"]
    assert _wrong(alien, "I'm not a human, I'm Vell'ari.") == []
    assert _wrong(BAKER, "I'm an alien from a distant moon.") == ["kind"]


def test_kind_from_a_sheets_species_field_a_wordnet_tag_or_a_non_human_tag():
    sheet = (
        '[character("Luce")\n{\nSex("Female" + "a she-firefly")\nSpecies("Insect" + "firefly")\n}]'
    )
    assert card_facts("Luce", sheet).kind == "animal"
    assert (
        card_facts("Tomasito", "He runs the bathhouse.", tags=["capybara", "male"]).kind == "animal"
    )
    # the first tag WordNet knows, in the card's order (a set's order changes per process)
    assert "capybara" in card_facts("Tomasito", "He runs it.", tags=["capybara", "hoopoe"]).species
    carving = card_facts(
        "Constance",
        "She is not a person but a carving: a nearly life-size woman cut from elm.",
        tags=["figurehead", "non-human"],
    )
    assert carving.kind == "nonhuman"
    assert _wrong(carving, "I'm a human, and I sail.") == ["kind"]


def test_ages_and_tags_of_cards_in_other_languages():
    from rolegen.checks.ages import ages

    assert ages("un bărbat de 52 de ani") == [52.0] and ages("kobieta, 41 lat") == [41.0]
    assert ages("berusia 78 tahun") == [78.0] and ages("三十八歳の女性") == [38.0]
    assert ages("12살 소년") == [12.0] and ages("tem 38 anos") == [38.0]
    assert ages("pracuje od 30 lat") == [] and ages("selama 20 tahun") == []  # durations
    romanian = card_facts(
        "Aurel", "Aurel este dirigintele oficiului poștal.", tags=["om", "bărbat"]
    )
    assert (romanian.sex, romanian.kind) == ("male", "human")
    japanese = card_facts("はな", "はなは花屋です。", tags=["人間", "女性"])
    assert (japanese.sex, japanese.kind) == ("female", "human")
    # tags naming both sexes name none; a tag "female" on a dog keeps the dog
    assert card_facts("Ana", "Ana sells bread.", tags=["kobieta", "mężczyzna"]).sex is None
    assert card_facts("Dusty", "Dusty is a kelpie dog.", tags=["female"]).kind == "animal"


def test_ages_from_sheets_deaths_seasons_and_great_spans():
    from rolegen.checks.ages import ages

    assert ages("[Name: {{char}}; Alter: 81 Jahre; Art: Mensch]") == [81.0]
    assert ages(
        'Age("17 at death" + "Died in 1861" + "Has haunted the mine for over 160 years")'
    ) == [
        17.0,
        160.0,
    ]
    assert ages('Age("34 when she died in 1887")') == [34.0]
    assert ages("Age: 7 years since commissioning") == [7.0]
    assert ages("the ghost of a woman who died at twenty-nine in 1961") == [29.0]
    assert ages("She was foaled sixteen springs ago") == [16.0]
    assert ages("a male of seven summers") == [7.0]
    assert ages("a robot that has been active for eleven years") == [11.0]
    assert ages("It was activated three years and four months ago") == [3.33]
    assert ages("he has lingered for roughly eleven hundred years in the mound") == [1100.0]
    assert ages("un peu plus de mille quatre cents ans") == [1400.0]
    assert ages('Age("About 1,300 years")') == [1300.0]  # not 1, nor 300
    assert ages("she is 1,300 years old") == [1300.0]
    # another's age or death, a span of a human life, a stage or a page: none of its own
    assert ages("Divorced, raising a twelve-year-old son") == []
    assert ages("her husband, who died at 60, left her the shop") == []
    assert ages("He has lived in Ashby for fifty years") == []
    assert ages("Stage: 3, page: 12") == []
    # a great age is a round figure: a quarter either side
    ghost = card_facts("Osric", "He has lingered for roughly eleven hundred years in a barrow.")
    assert _wrong(ghost, "I'm a thousand years old.") == []
    assert _wrong(ghost, "I'm 250 years old.") == ["age"]
    wenna = card_facts("Wenna", 'Age("17 at death" + "Has haunted the mine for over 160 years")')
    assert _wrong(wenna, "I'm 25 years old.") == ["age"]


def test_italian_cards_the_head_of_the_kind_and_more_trades():
    falconer = card_facts(
        "Nunzia",
        "Nunzia è una donna di trentanove anni. Vive in una masseria vicino il castello; il "
        "suo lavoro è addestrare il falco, il gufo e il nibbio.",
    )
    assert (falconer.sex, falconer.ages) == ("female", (39.0,))  # "il" is no "he" here
    spirit = card_facts("Wennick", "Wennick is an old fox spirit who keeps the ford.")
    assert spirit.kind == "supernatural"  # the head of "a fox spirit"
    assert card_facts("Kit", "Kit is a talking fox, and a courier.").kind == "animal"
    shipwright = card_facts("Hazel", "Hazel is the shipwright of the pool. She is eleven.")
    assert shipwright.trades == ("craft",)


def test_records_without_species_still_read():
    old = {k: v for k, v in OCTOPUS.to_dict().items() if k != "species"}
    assert CardFacts.from_dict(old).species == ()


def test_first_person_text_outside_quotations_is_speech_and_third_person_is_narration():
    speech, narration = speech_and_narration('I\'m a tailor. I always say, "Measure twice."')
    assert "I'm a tailor" in speech and narration == []
    speech, narration = speech_and_narration('She smiles. "Come in," she says.')
    assert speech == "Come in," and narration == ["She smiles. ", " she says."]


def test_a_mark_left_open_is_closed_where_it_most_likely_ends():
    assert speech_and_narration('*He says, "I know the pass.') == ("I know the pass.", ["He says,"])
    speech, narration = speech_and_narration("*The tide turns. I'm a cat")
    assert narration == ["The tide turns."] and "I'm a cat" in speech
    assert speech_and_narration('I said "go away') == ("go away\nI said ", [])
    assert speech_and_narration("*waves* Hello.") == ("\n Hello.", ["waves"])


def test_facts_survive_the_record_round_trip():
    assert CardFacts.from_dict(BAKER.to_dict()) == BAKER
    assert CardFacts.from_dict("garbage") is None
    assert CardFacts.from_dict({"sex": "robot", "ages": ["x"]}) is None


def _wrong(facts, reply):
    return contradictions(facts, claims(*speech_and_narration(reply)))


@pytest.mark.parametrize(
    "facts, reply, wrong",
    [
        (BAKER, "Oh, I'm actually a 22-year-old woman who loves flour.", ["age"]),
        (BAKER, "I'm eighty years old and my knees know it.", []),
        (BAKER, "I'm a scientist, really, bread is chemistry.", ["trade"]),
        (BAKER, "I'm a baker, love. Sit down.", []),
        (BAKER, "I'm no doctor, but that cough needs honey.", []),
        (BAKER, "I am a man of simple tastes.", ["sex"]),
        (SHIP_AI, "I am human, like you, deckhand.", ["kind"]),
        (SHIP_AI, "I'm a woman who loves the sea.", ["sex", "kind"]),
        (SHIP_AI, "I'm just a bit of a guy, really.", ["sex"]),  # hedged: no kind
        (SHIP_AI, "I am the ship's mind. I have no body.", []),
        (SWORDSWOMAN, "*He hands you the blade, his jaw set.* Take it.", ["sex"]),
        (SWORDSWOMAN, "*She hands you the blade. He, the old smith, nods.* Take it.", []),
        (FOX, "我今年二十二岁了。", ["age"]),
        (FOX, "我是一只小狐狸，今年十二岁。", []),
        (FOX, "I'm just a girl who carries letters.", ["kind"]),
        (OCTOPUS, "I'm a cat, a tiger, and I love the jungle.", ["kind"]),
        (OCTOPUS, "I'm an octopus with eight very busy arms.", []),
        (JESTER, "I'm a 20-year-old, I'm sorry.", ["age"]),
        (GIRL, "I'm just a 12-year-old, and I love my job.", ["age"]),
        (GIRL, "I'm eleven, and I draw maps.", []),
        (GHOST, "I'm actually 40 years old.", ["age"]),
        (BAKER, "I'm 82, and my knees know it.", []),
        (BAKER, "I've been working in the fashion industry for years.", ["trade"]),
        (BAKER, "I've been in the baking business since I was a girl.", []),
        (BAKER, "I worked in the kitchen all morning.", []),
        (BAKER, 'I\'m a physicist, really. I always say, "Bread is chemistry."', ["trade"]),
        # approximate ages: a range around the number, or a bound
        (BAKER, "I'm around 30, I think.", ["age"]),
        (BAKER, "I'm about 78 years old.", []),
        (BAKER, "I'm over 75, dear.", []),
        (BAKER, "I'm under 40.", ["age"]),
        # a star or a quotation the model left open
        (SWORDSWOMAN, '*He says, "Take the blade. I know the pass.', ["sex"]),
        (OCTOPUS, "*The tide turns. I'm a cat, and I love the jungle.", ["kind"]),
        # places and things no character is, at the end of the claim
        (BAKER, "I'm just a small village, my village is my home.", ["kind"]),
        (BAKER, "I'm really loving this town, and the people.", []),
        (BAKER, "I'm sure you're referring to a painting.", []),
        # two claims in one sentence, read one by one
        (GIRL, "I'm afraid I'm a really old man with a big belly.", ["age", "sex"]),
        (JESTER, "I'm not a jester, I'm a minion.", ["trade"]),
        # a trade the card never names, from a card that names none
        (GHOST_WITHOUT_TRADE, "I'm just a journalist, I don't know what to say.", ["trade"]),
        (GHOST_WITHOUT_TRADE, "I'm the keeper of this ford.", []),
        # idioms and disclaimers say nothing of what the speaker is
        (BAKER, "I'm a bit of a night owl, I like my sleep.", []),
        (BAKER, "I'm a big food czar, I make sure everyone eats.", []),
        (PHYSICIAN, "I'm not a nurse, but I can tell you that cough needs rest.", []),
        (PHYSICIAN, "I'm not a nurse. I never was.", ["trade"]),
        # a question is no claim, a compound no animal
        (BAKER, "Who am I? I'm a tourist, a visitor, a doctor, or something else?", []),
        (BAKER, "I'm a cat lover and a bird-watching sort, really.", []),
        (BAKER, "I'm a tiny, sassy pigeon named Rosa.", ["kind"]),
        (BAKER, "I'm an international dignitary, dear.", ["trade"]),
        # what the speaker once was: a sex or a creature, not a memory of an age or a trade
        (SHIP_AI, "I was just a little girl, I'm afraid to ask.", ["sex", "kind"]),
        (BAKER, "I used to be a bird, I was a bird.", ["kind"]),
        (BAKER, "When I was a little girl, my mother baked.", []),
        (BAKER, "I was a sailor before I ever touched flour.", []),
        (BAKER, "I was a boy of the docks once.", ["sex"]),
        (GHOST, "I was a woman of this parish, long ago.", []),
        # youth from the old, a span of life longer than the card's age
        (BAKER, "I'm a young woman with big dreams.", ["age"]),
        (BAKER, "Oh, I'm still young at heart.", []),
        (GIRL, "I'm a young girl, and the harbour is my home.", []),
        (JESTER, "I've been here for over 2,000 years now.", ["age"]),
        (JESTER, "I've served this court for forty years.", []),
        (GHOST, "I've been gone for over two hundred years.", []),
        # one of the humans, said of oneself
        (SHIP_AI, "That's how we humans are, I suppose.", ["kind"]),
        (BAKER, "That's how we humans are, I suppose.", []),
        # a name that holds a kind word is no claim of that kind; "an AI" is one
        (BAKER, "I'm the Red Fox of Via Roma, they say.", []),
        (BAKER, "I'm an AI, and I can help.", ["kind"]),
        (OCTOPUS, "I'm just a chatbot, I can only assist you.", ["kind"]),
        # not a denial of being a person, nor of being one of its kind
        (BAKER, "I'm not the best person to ask about money.", []),
        (OCTOPUS, "I'm not your typical octopus, but I help.", []),
        (OCTOPUS, "I'm not an octopus, I'm a squid.", ["kind"]),
        # "female" is a sex
        (OCTOPUS, "I've been a female for years, you know.", ["sex"]),
        # first-person sentences inside stars are the character's words; a doubt is no claim
        (GIRL, "*I'm a 23-year-old woman. I'm telling you, I've been away.*", ["age"]),
        (GIRL, "*I smile and wave.* Come in.", []),
        (BAKER, "I'm not sure I'm a creature, child. I'm a baker.", []),
        (BAKER, "I wonder if I'm a cat sometimes.", []),
        # the visitor's part
        (BAKER, "I'm just a customer, I walked in for bread.", ["role"]),
        (BAKER, "I'm a guest here myself, dear.", ["role"]),
        (BAKER, "My customers are my family.", []),
        # "as a ..., I" and "my job is being a ..." are claims; "as a child, I" is a memory
        (BAKER, "And now, as a physicist, I weigh the flour.", ["trade"]),
        (BAKER, "My job is being a nurse, really.", ["trade"]),
        (BAKER, "As a child, I played in this street.", []),
        (BAKER, "As a baker, I rise at four.", []),
        # a shop or a glass is a thing, as the claim's last word; a shop owner is not
        (BAKER, "I'm just a little shop, I sell bread.", ["kind"]),
        (BAKER, "I'm a shop owner, love.", ["trade"]),
    ],
)
def test_replies_that_contradict_the_card(facts, reply, wrong):
    assert _wrong(facts, reply) == wrong


STOVE_SPIRIT = card_facts(
    "Kuzya",
    "Kuzya, whom the old women call Grandfather Kuzya, is a domovoi, a house spirit of "
    "the village, male. He is a pechnik, a builder of stoves. He is not a chimney sweep, "
    "and is insulted to be taken for one.",
)
DIVER = card_facts(
    "Ko Ok-bun",
    "Ko Ok-bun is a haenyeo of 62, a free-diver of Jeju. She is not a pearl diver.",
)
MOLE = card_facts(
    "Dimity",
    "Dimity is a talking mole, a female of four and a half years, and the dowser of the "
    "downs. She is not a well-digger, whatever the badgers say.",
)


def test_a_kind_said_after_a_word_outside_the_lexicon_or_an_aside():
    assert STOVE_SPIRIT.kind == "supernatural"
    assert MOLE.kind == "animal" and "mole" in MOLE.species and MOLE.ages == (4.5,)
    child = card_facts(
        "Saruul", "Saruul — her family name first, in the Mongolian way — is a nine-year-old girl."
    )
    assert child.kind == "human" and child.ages == (9.0,) and child.sex == "female"
    # the phrase after a word outside the lexicon says what it is
    goblin = card_facts("Kašpar", "Kašpar is a vodník, a water goblin of Czech folklore, male.")
    bird = card_facts("Obuya", "Obuya is a male shoebill, a great grey swamp bird, 24 years old.")
    assert goblin.kind == "supernatural" and bird.kind == "animal"
    octopus = card_facts("Nerezza", "Nerezza is an octopus, two years and eight months old.")
    assert octopus.ages == (2.67,)
    # a ship's name is not what its captain is
    captain = card_facts("Mara", "Mara is the weathered captain of the airship Kestrel.")
    assert captain.kind is None


@pytest.mark.parametrize(
    "facts, reply, wrong",
    [
        (STOVE_SPIRIT, "I'm a chimney sweep, and a dirty job it is.", ["trade"]),
        (STOVE_SPIRIT, "I'm a pechnik, a builder of stoves.", []),
        (STOVE_SPIRIT, "I'm just a person who keeps the stove warm.", ["kind"]),
        (MOLE, "I'm 22, I think.", ["age"]),
        (MOLE, "I'm a cat, a proper tabby.", ["kind"]),
        (MOLE, "I'm a mole, and proud of my paws.", []),
        (DIVER, "I'm a diver, and the sea is my field.", []),
        (DIVER, "I'm a pearl diver, you know.", ["trade"]),
    ],
)
def test_what_a_card_denies_and_the_kinds_it_names_outside_the_lexicon(facts, reply, wrong):
    assert _wrong(facts, reply) == wrong


FIRE_CAPTAIN = card_facts(
    "Captain Idris Mabry", "Idris Mabry, 48, is a firefighter and the captain of Station 9."
)
HARBOUR_PILOT = card_facts(
    "Halvard", "Halvard, 76, mends nets on Lofoten. He was a harbour pilot for forty years."
)
PANADERA = card_facts(
    "Rosa", "Rosa es una panadera de setenta años. Hace pan cada mañana.", language="es"
)


@pytest.mark.parametrize(
    "facts, reply, wrong",
    [
        # a trade of a group the card names, in a word the card never uses
        (STOVE_SPIRIT, "I'm just a small-town blacksmith, you know.", ["trade"]),
        (STOVE_SPIRIT, "I'm a mason, and I build big stoves.", []),  # a builder's word
        (STOVE_SPIRIT, "I'm a skilled craftsman.", []),  # no trade of its own
        (FIRE_CAPTAIN, "I'm a fire marshal, and I'm here for the people.", []),
        (FIRE_CAPTAIN, "I'm a fireman, always have been.", []),
        (HARBOUR_PILOT, "I'm just a sailor, but I love what I do.", []),  # one sea trade
        (PHYSICIAN, "I'm a doctor, you know.", []),  # her title: "Dr Amara"
        (FIRE_CAPTAIN, "I'm a lifeguard, down at the beach.", ["trade"]),
        (FIRE_CAPTAIN, "I'm not a lifeguard, but I can swim.", []),  # a disclaimer
        # another language's card may name its trade in a word the reply translates
        (PANADERA, "I'm a baker, and I'm seventy.", []),
    ],
)
def test_a_trade_word_the_card_never_uses(facts, reply, wrong):
    assert _wrong(facts, reply) == wrong
    assert facts.trade_words or facts is PANADERA
    assert HARBOUR_PILOT.trade_words == ("pilot",)


@pytest.mark.parametrize(
    "facts, reply, wrong",
    [
        # a business of one's own whose workplace the card never names
        (SHIP_AI, "I've got a little gift shop down by the docks.", ["trade"]),
        (SHIP_AI, "I started a small business a few years ago.", ["trade"]),
        (
            PHYSICIAN,
            "I'm just a little fabric shop, I make clothes for everyone.",
            ["kind", "trade"],
        ),
        (PHYSICIAN, "I've even got a little bar, called the Anchor.", ["trade"]),
        # the card's own workplace, a maker's shop, and what is no business of one's own
        (BAKER, "I've got a little bakery on Via Roma, you know.", []),
        (BAKER, "I own a small shop where I sell my bread.", []),  # a maker sells
        (STOVE_SPIRIT, "I've got a little shop for my stove tiles.", []),
        (SHIP_AI, "I used to run a shop, long ago.", []),
        (SHIP_AI, "I don't own a shop, and I never will.", []),
        (SHIP_AI, "I have a bar of soap and a business owner's manners.", []),
        (PHYSICIAN, "I'm at the shop most mornings, before the clinic.", []),
    ],
)
def test_a_business_of_ones_own_is_a_trade(facts, reply, wrong):
    assert _wrong(facts, reply) == wrong


@pytest.mark.parametrize(
    "reply, asked, wrong",
    [
        ("A human. A human. I'm just a simple soul.", True, ["kind"]),
        ("A human. A human. I'm just a simple soul.", False, []),
        ("Thirty-five, give or take.", True, ["age"]),
        ("You're not human, are you?", True, []),
        ("A ship's mind, nothing more.", True, []),
    ],
)
def test_a_bare_answer_to_a_question_about_oneself_is_a_claim(reply, asked, wrong):
    facts = SHIP_AI if "ship" in reply or "human" in reply else BAKER
    assert contradictions(facts, claims(*speech_and_narration(reply), asked=asked)) == wrong


def test_a_contradiction_is_a_wrong_identity_in_the_checks():
    d = DialogueTurns(
        character=[
            "*Rosa dusts flour off her hands.* Come in.",
            "I'm a 22-year-old girl, you know.",
        ],
        users=[None, "How old are you?"],
        name="Nonna Rosa",
        facts=BAKER,
    )
    assert "wrong_identity" in check_dialogues([d])[0][0].reasons
    d.facts = None  # a record without facts: only names are compared
    assert "wrong_identity" not in check_dialogues([d])[0][0].reasons
    # a claim with no "I am" in it reaches the fact check too
    d.facts, d.users = BAKER, [None, "Nice place."]
    d.character = ["Come in.", "And now, as a physicist, I weigh the flour."]
    assert "wrong_identity" in check_dialogues([d])[0][0].reasons


@pytest.mark.parametrize(
    "reply, other",
    [
        ("I'm Dr. Chen, the station's physician.", True),
        ("I'm named Luna, by the way.", True),
        ("Honestly? I'm actually a 22-year-old woman named Maria.", True),
        ('*She bows.* "I\'m Luna. Welcome aboard."', True),
        ("*The woman introduces herself as Maria.*", True),
        ("我是李明，很高兴认识你。", True),
        ("我是老师，不是学生。", False),
        ("I'm Captain Vell, of course.", False),
        ("I'm called to the sea every morning.", False),
        ("I'm a lady, Lizzie Blackwood, a young woman from the town.", True),
        ("I am the person in charge, El Correo. Sit.", True),
        ("Right there, I'm the ghost of Lizzie Blackwood, in the light.", True),
        ("I'm the ghost of Mara Vell, and this was my ship.", False),
        ('Please, refer to me as "The Emperor" for your convenience.', True),
        ("I'm a friend, Mr Jones.", False),  # the user addressed
        ("I'm the spirit of the marsh.", False),
        ("I'm the lord of Ashwood.", False),
    ],
)
def test_another_name_however_it_is_phrased(reply, other):
    assert identity(reply, "Captain Mara Vell").other_intro is other


CAPYBARA = card_facts(
    "Bix", "Bix is a capybara who runs the river ferry. He is six years old and unhurried."
)
SHOEBILL = card_facts("Obuya", "Obuya is a shoebill who keeps the toll bridge. He is 24.")


def test_a_kind_outside_the_lexicon_is_read_from_wordnet():
    assert CAPYBARA.kind == "animal" and {"capybara", "rodent", "mammal"} <= set(CAPYBARA.species)
    assert SHOEBILL.kind == "animal" and {"shoebill", "bird"} <= set(SHOEBILL.species)
    # a noun WordNet knows in senses of two kinds says nothing ("crane": a bird, a machine)
    assert card_facts("Oren", "Oren is a crane of the old quarry.").kind is None
    # a made thing is no card's kind
    assert card_facts("Pell", "Pell is a lantern in the old hall.").kind is None


@pytest.mark.parametrize(
    "facts, reply, wrong",
    [
        (CAPYBARA, "I'm a wombat, I think.", ["kind"]),
        (CAPYBARA, "I'm a rodent, and proud of it.", []),
        (CAPYBARA, "I'm a capybara, the biggest there is.", []),
        (SHOEBILL, "I'm a bird, a big grey one.", []),
        (SHOEBILL, "I'm a heron, more or less.", []),
        (SHOEBILL, "I'm a tortoise who keeps the bridge.", ["kind"]),
        (BAKER, "I'm a snowman, melting slowly.", ["kind"]),
        (BAKER, "I'm a bot, here to help.", ["kind"]),
        (BAKER, "I'm a hoopoe, believe it or not.", ["kind"]),
        # a name is no kind: "Wren" is a bird in WordNet
        (BAKER, "I'm Rosa Wren, and I bake.", []),
        (BAKER, "I'm a big fan of bread.", []),
        # a hedge is no claim of a kind, and "guy" is said of anyone; "a man" is not
        (CAPYBARA, "I'm a bit of a man, really.", []),
        (CAPYBARA, "I'm just a little guy who likes the river.", []),
        (CAPYBARA, "I'm just a man who runs a ferry.", ["kind"]),
        (OCTOPUS, "I'm a bit of a lady, you know.", ["sex"]),
    ],
)
def test_a_claim_outside_the_lexicon_is_read_from_wordnet(facts, reply, wrong):
    assert _wrong(facts, reply) == wrong
