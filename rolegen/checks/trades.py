"""Trade words a reply claims that its card never uses (`unnamed_trade`): the finer of the
two trade contradictions, beside the trade groups of `persona_words` ("I'm just a
small-town blacksmith" from a stove-setter: both crafts). What is no contradiction: a
generic word (`GENERIC_TRADES`), a word sharing a part with the card's, a word of the same
trade (`TRADE_SYNONYMS`, hand-made lists).

Not handled: pairs of words for one trade that the lists keep apart ("a shopkeeper" from
a pawnbroker), and cards in languages other than English (their facts keep no trade words).
"""

from __future__ import annotations

# Trade words that name no trade of their own ("a skilled craftsman" from a glassblower).
GENERIC_TRADES = frozenset(
    """artisan craftsman craftswoman handwerker artesano artesana artist performer
    entertainer officer specialist manager consultant executive designer developer trader
    merchant vendor professional""".split()
)
# Words for one trade: a reply may say any of them for the card's ("a chef" from a cook).
TRADE_SYNONYMS = [
    set(words.split("|"))
    for words in (
        "cook|chef|line cook|pastry chef|cuisinier|cocinero|cocinera|cuisinière|koch|köchin",
        "doctor|physician|medic|surgeon|healer",
        "nurse|caregiver|carer",
        "vet|veterinarian",
        "sailor|seaman|deckhand|marin|marinero|marinera|seemann|helmsman|captain|skipper|"
        "pilot|navigator|capitaine|capitán|kapitän|boatman|ferryman|gondolier",
        "driver|chauffeur|cabbie|taxi driver|trucker|truck driver|courier",
        "writer|author|novelist|playwright|poet|scribe|escritora|écrivain|schriftsteller",
        "journalist|reporter|editor",
        "teacher|tutor|lecturer|professor|governess|headmaster|headmistress|maestro|maestra",
        "scholar|historian|archivist|librarian|curator|researcher|scientist",
        "smith|blacksmith|silversmith|goldsmith|forgeron|herrero|schmied",
        "jeweler|jeweller|goldsmith|silversmith",
        "carpenter|woodcarver|carver|joiner|cabinetmaker|menuisier|carpintero|tischler",
        "builder|mason|stonemason|bricklayer",
        "tailor|seamstress|dressmaker|milliner|hatter|embroiderer|knitter|quilter",
        "shoemaker|cobbler",
        "clockmaker|watchmaker",
        "mapmaker|map-maker|cartographer",
        "shopkeeper|shop owner|store owner|storekeeper|grocer|saleswoman|salesman|cashier|clerk",
        "banker|moneylender|financier|broker|accountant|bookkeeper|teller",
        "guard|watchman|sentry|warden|jailer|bodyguard|security officer",
        "police officer|cop|constable|inspector|detective|sheriff|marshal",
        "soldier|warrior|fighter|mercenary|knight|swordswoman|swordsman|sergeant|lieutenant|"
        "colonel|commander|army commander|marine|archer",
        "firefighter|fireman|fire marshal|fire chief",
        "farmer|farmhand|rancher|herder|shepherd|shepherdess|goatherd|cowboy|cowgirl",
        "gardener|groundskeeper|landscaper|florist",
        "fisherman|fisher|fisherwoman",
        "priest|pastor|vicar|minister|friar|monk|abbot|nun|abbess",
        "wizard|witch|mage|sorcerer|sorceress|warlock|enchantress|magician|shaman|druid",
        "musician|singer|composer|guitarist|drummer|cellist|organist|violinist|pianist|bard|"
        "minstrel|troubadour|harpsichordist",
        "painter|illustrator|sculptor|artist",
        "servant|maid|butler|housekeeper|caretaker|janitor|cleaner|steward|valet|footman",
        "innkeeper|bartender|waiter|waitress|barista",
        "king|queen|prince|princess|emperor|empress|monarch|duke|duchess|lord|earl|baron|"
        "baroness|countess|nobleman|noblewoman|aristocrat|heir|heiress|chieftain|sultan",
    )
]


def unnamed_trade(said: list[str], card: tuple[str, ...]) -> bool:
    """A trade word the reply claims that the card never uses, nor any word for the same
    trade: "a blacksmith" from a stove-setter, "a travel writer" from a potter whose card
    mentions a bookshop. Not a generic word ("a craftsman"), nor one that shares its last
    word or a part with the card's ("a clerk" from a night clerk, "a smith" from a
    blacksmith), nor one of a list of words for the card's trade (`TRADE_SYNONYMS`: "a
    fire marshal" from a firefighter). Only for a card whose trade words are known (an
    English card's)."""
    if not card:
        return False
    for word in said:
        last = word.split()[-1]
        if word in GENERIC_TRADES or any(
            word in c or c in word or last == c.split()[-1] for c in card
        ):
            continue
        if not any(word in group and group.intersection(card) for group in TRADE_SYNONYMS):
            return True
    return False
