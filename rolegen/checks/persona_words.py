"""The words the persona checks read (numbers and ages are `ages.py`'s): pronouns and
sex words, kinds of being (human, artificial, animal, supernatural, a creature, a thing),
trades and workplaces in trade groups, titles that state a trade or a sex, and `words_of`,
which finds a lexicon's words in a text by dictionary look-up. Nouns beyond these lists
are WordNet's (`wordnet.py`).

Shared by the card side (`persona_facts`: what a card states) and the reply side
(`self_claims`: what a reply says of itself), so both read one vocabulary. Not handled:
words outside these lists and WordNet's, inflected forms other than a plural "s".
"""

from __future__ import annotations

import re

FEMALE = re.compile(
    r"\b(?:she|her|hers|herself|woman|girl|lady|mother|grandmother|grandma|wife|widow|"
    r"daughter|queen|princess|elle|femme|fille|dame|mère|veuve|ella|mujer|niña|chica|"
    r"señora|doña|abuela|madre|viuda|frau|mädchen|mutter|großmutter|witwe)\b|她|女|奶奶|婆婆|姑娘",
    re.IGNORECASE,
)
MALE = re.compile(
    r"\b(?:he|him|his|himself|man|boy|gentleman|father|grandfather|grandpa|husband|widower|"
    r"son|king|prince|il|homme|garçon|monsieur|père|veuf|él|hombre|niño|chico|señor|"
    r"abuelo|padre|viudo|er|mann|junge|herr|vater|großvater|witwer)\b|他|爷爷|男",
    re.IGNORECASE,
)
NEUTER = re.compile(
    r"\bno gender\b|\bgenderless\b|\bagender\b|\brefers to itself as\b|\bnonbinary\b|"
    r"\bnon-binary\b|\bsans genre\b|\bsin género\b|\bgeschlechtslos\b|\bthey/them\b|"
    r"无性别",
    re.IGNORECASE,
)

KINDS = {
    "artificial": (
        r"a\.i\.|artificial intelligence|artificial being|artificial person|artificial lifeform|"
        r"robot|android|machine|computer|program|"
        r"automaton|synthetic|cyborg|hologram|chatbot|bot|language model|virtual assistant|androidin|intelligence artificielle|androïde|ordinateur|"
        r"inteligencia artificial|androide|máquina|künstliche intelligenz|roboter",
        r"人工智能|机器人|智能|电脑",
    ),
    "animal": (
        r"octopus|fox|vixen|cat|dog|wolf|bird|raven|crow|owl|horse|bear|rabbit|hare|mouse|"
        r"rat|snake|frog|toad|fish|whale|dolphin|squid|spider|tiger|lion|deer|otter|badger|"
        r"mongoose|monkey|ape|goat|sheep|cow|pig|duck|goose|eagle|hawk|shark|seal|sheepdog|"
        r"puppy|kitten|parrot|pigeon|bee|butterfly|lizard|turtle|tortoise|crab|lobster|"
        r"squirrel|german shepherd|mole|beaver|heron|stork|weasel|ferret|stoat|marten|"
        r"porcupine|pangolin|armadillo|sloth|raccoon|skunk|opossum|possum|walrus|penguin|swan|"
        r"magpie|sparrow|robin|wren|finch|gull|seagull|albatross|pelican|flamingo|peacock|"
        r"rooster|hen|chicken|camel|llama|alpaca|yak|elephant|giraffe|zebra|hippo|"
        r"hippopotamus|rhino|rhinoceros|kangaroo|koala|panda|leopard|jaguar|cheetah|lynx|bat|"
        r"moth|beetle|snail|salamander|newt|crocodile|alligator|gecko|iguana|chameleon|eel|"
        r"salmon|trout|carp|jellyfish|starfish|seahorse|mule|donkey|ox|boar|hound|stallion|"
        r"mare|pony|lamb|toucan|hummingbird|vulture|falcon|kestrel|bison|buffalo|moose|elk|"
        r"reindeer|"
        r"hedgehog|renard|le chat|un chat|chien|loup|oiseau|pieuvre|zorro|gato|perro|lobo|pájaro|pulpo|"
        r"fuchs|katze|hund|vogel|krake|oktopus",
        r"狐狸|狐|猫|狗|狼|鸟|章鱼|兔",
    ),
    "supernatural": (
        r"ghost|spirit|phantom|spectre|specter|wraith|dragon|elf|dwarf|vampire|demon|angel|"
        r"fairy|fae|goblin|troll|fantôme|esprit|elfe|fantasma|espíritu|dragón|elfo|geist|"
        r"gespenst|drache|god|goddess|deity|dios|diosa|dieu|gott|mermaid|merman|merfolk|selkie|"
        r"siren|nymph|dryad|pixie|sprite|werewolf|zombie|golem|centaur|gnome|unicorn|phoenix|"
        r"griffin|sirène|sirena|meerjungfrau|supernatural being|supernatural|djinn|jinn|genie|kitsune|"
        r"yokai|tengu|kappa|banshee|leprechaun|kobold|nixie|naiad|nereid|oni|rusalka|leshy|"
        r"domovoi|gargoyle|ogre|imp|revenant|ghoul|sylph|undine|kelpie|yeti|wendigo|harpy|"
        r"satyr|faun|minotaur|cyclops|valkyrie|naga|tanuki|huldra|tomte|nisse|will-o'-the-wisp",
        r"鬼|幽灵|龙|精灵|妖",
    ),
    # what only a person is not: "I'm a creature of the sea" from a girl
    "nonhuman": (r"creature|beast|monster|critter|alien|extraterrestrial", r"怪物|生物|外星人"),
    # things no character is; idiom-prone ones ("an open book", "a rock") left out
    "object": (
        r"game|place|tree|plant|flower|chair|table|harpsichord|piano|violin|toy|doll|statue|"
        r"painting|building|house|book|village|town|city|country|farm|ocean|sea|river|lake|"
        r"mountain|forest|cup|bottle|box|door|window|wall|recorder|camera|phone|radio|"
        r"television|car|truck|website|app|shop|store|stall|bakery|restaurant|cafe|café|market|"
        r"workshop|cottage|hotel|museum|library|school|church|temple|kitchen|glass",
        r"书|游戏|树|椅子|桌子",
    ),
    "human": (
        r"human|human being|person|mortal|woman|man|girl|boy|guy|lady|gentleman|child|humain|"
        r"humaine|femme|homme|humano|humana|mujer|hombre|mensch|frau|mann",
        r"人类|普通人|女人|男人|女孩|男孩",
    ),
}
# Animals by family: a fox card that says "vixen", or a raven that says "I'm a bird", is
# still itself; an octopus that says "I'm a cat" is not. Words not listed are their own family.
_ANIMAL_FAMILIES = {
    "cat": "cat|kitten|le chat|un chat|gato|katze|猫",
    "dog": "dog|puppy|sheepdog|german shepherd|hound|chien|perro|hund|狗",
    "fox": "fox|vixen|renard|zorro|fuchs|狐狸|狐",
    "wolf": "wolf|loup|lobo|狼",
    "bird": "bird|raven|crow|owl|parrot|pigeon|eagle|hawk|duck|goose|oiseau|pájaro|vogel|鸟|"
    "heron|stork|magpie|sparrow|robin|wren|finch|gull|seagull|albatross|pelican|flamingo|"
    "peacock|rooster|hen|chicken|penguin|swan|toucan|hummingbird|vulture|falcon|kestrel",
    "horse": "horse|stallion|mare|pony",
    "pig": "pig|boar",
    "cow": "cow|ox|bison|buffalo",
    "deer": "deer|moose|elk|reindeer",
    "weasel": "weasel|ferret|stoat|marten",
    "hippo": "hippo|hippopotamus",
    "rhino": "rhino|rhinoceros",
    "opossum": "opossum|possum",
    "sheep": "sheep|lamb",
    "crocodile": "crocodile|alligator",
    "lizard": "lizard|gecko|iguana|chameleon",
    "octopus": "octopus|squid|pieuvre|pulpo|krake|oktopus|章鱼",
    "fish": "fish|shark",
    "rabbit": "rabbit|hare|兔",
    "mouse": "mouse|rat",
    "turtle": "turtle|tortoise",
    "ape": "monkey|ape",
}
ANIMAL_FAMILY = {w: f for f, words in _ANIMAL_FAMILIES.items() for w in words.split("|")}
GENDERED_HUMAN = {"woman", "man", "girl", "boy", "guy", "lady", "gentleman", "femme", "homme",
                   "mujer", "hombre", "frau", "mann", "女人", "男人", "女孩", "男孩"}  # fmt: skip
HUMAN_ONLY = {"human", "human being", "person", "mortal", "humain", "humaine", "humano",
               "humana", "mensch", "人类"}  # fmt: skip
KIND_OF = {}
KIND_ALTERNATIVES = []
for _kind, (_latin, _han) in KINDS.items():
    for _w in _latin.split("|"):
        KIND_OF.setdefault(_w.replace("\\", ""), _kind)
    for _w in _han.split("|"):
        KIND_OF.setdefault(_w, _kind)
    KIND_ALTERNATIVES.append(_latin)
KIND_OF.update({"ai": "artificial", "ki": "artificial"})
KIND_WORD = re.compile(
    r"\b((?-i:AI|KI)|"
    + "|".join(sorted({w for a in KIND_ALTERNATIVES for w in a.split("|")}, key=len, reverse=True))
    + r")s?\b|("
    + "|".join(sorted({w for _, h in KINDS.values() for w in h.split("|")}, key=len, reverse=True))
    + ")",
    re.IGNORECASE,
)

# Trades, grouped: a claimed trade contradicts a card that names no trade of its group.
TRADES = {
    "medicine": "optician|optometrist|physiotherapist|therapist|psychologist|psychiatrist|"
    "counselor|counsellor|caregiver|carer|doctor|physician|nurse|surgeon|medic|healer|"
    "herbalist|vet|veterinarian|midwife|dentist|pharmacist|apothecary|médecin|infirmière|"
    "sage-femme|médico|doctora|enfermera|partera|arzt|ärztin|hebamme|医生|大夫|护士",
    "science": "mathematician|geologist|botanist|zoologist|archaeologist|anthropologist|"
    "technician|alchemist|astronaut|scientist|researcher|professor|engineer|chemist|biologist|"
    "physicist|astronomer|inventor|scientifique|chercheur|científico|científica|"
    "wissenschaftler|科学家",
    "food": "pastry chef|confectioner|grocer|fishmonger|cheesemaker|cheesemonger|winemaker|"
    "sommelier|distiller|caterer|dishwasher|line cook|cocinera|cuisinière|köchin|baker|chef|"
    "cook|waiter|waitress|barista|bartender|brewer|butcher|innkeeper|boulanger|boulangère|"
    "cuisinier|panadero|panadera|cocinero|bäcker|bäckerin|koch|面包师|厨师",
    "craft": "mason|stonemason|bricklayer|plumber|electrician|welder|builder|glazier|tanner|"
    "saddler|cooper|wheelwright|bookbinder|engraver|woodcarver|carver|silversmith|goldsmith|"
    "shipwright|boatbuilder|boatwright|bowyer|bell founder|bellfounder|"
    "repairman|handyman|dressmaker|milliner|hatter|shoemaker|knitter|quilter|artisan|"
    "craftsman|craftswoman|ocularist|handwerker|artesano|artesana|carpenter|blacksmith|smith|"
    "tailor|seamstress|weaver|potter|jeweler|jeweller|locksmith|mechanic|luthier|embroiderer|"
    "cobbler|glassblower|clockmaker|watchmaker|cartographer|mapmaker|map-maker|luthière|"
    "menuisier|forgeron|carpintero|herrero|tischler|schmied|绣娘|刺绣|裁缝|木匠|铁匠|锻工|工匠|修理工|tailleur|"
    "couturière|costurera|zapatero|cordonnier|schneider|schuster|orfebre|joyero|bijoutier|"
    "goldschmied|alfarero|potier|töpfer|vidriero|verrier|glaser|glasbläser|relojero|horloger|"
    "uhrmacher",
    "arms": "killer|hitman|executioner|spy|assassin|bodyguard|marine|archer|gladiator|samurai|ninja|sergeant|lieutenant|"
    "colonel|warden|jailer|bounty hunter|marshal|constable|inspector|watchman|sentry|guerrero|"
    "guerrera|krieger|kriegerin|guerrier|soldier|knight|warrior|mercenary|swordswoman|"
    "swordsman|fighter|guard|sheriff|security officer|officer|commander|army commander|"
    "police officer|detective|cop|soldat|chevalier|soldado|caballero|ritter|士兵|侦探|警察|保安|"
    "policía|policier|polizist|guardia|gendarme",
    "rescue": "fire marshal|fire chief|firefighter|fireman|paramedic|lifeguard|pompier|"
    "bombero|feuerwehrmann|消防员",
    "travel": "chauffeur|cabbie|taxi driver|trucker|truck driver|boatman|gondolier|deckhand|"
    "helmsman|stewardess|flight attendant|explorer|tour guide|skipper|conductora|marinera|"
    "captain|sailor|pilot|navigator|driver|courier|messenger|mail carrier|postman|ferryman|司机|"
    "渔夫|水手|飞行员|pirate|capitaine|marin|capitán|marinero|kapitän|seemann|船长|信使|邮差",
    "learning": "lecturer|headmaster|headmistress|principal|governess|archivist|curator|"
    "editor|novelist|playwright|reporter|stenographer|scribe|linguist|philosopher|profesora|"
    "escritora|écrivain|schriftsteller|teacher|tutor|librarian|scholar|writer|author|poet|"
    "journalist|translator|interpreter|historian|traductor|traducteur|übersetzer|翻译|作家|记者|"
    "professeur|enseignant|maestro|maestra|profesor|lehrer|lehrerin|老师|教师",
    "arts": "composer|guitarist|drummer|cellist|organist|choreographer|filmmaker|animator|"
    "cartoonist|comedian|puppeteer|tattoo artist|sound engineer|bard|minstrel|troubadour|"
    "pintor|pintora|peintre|maler|malerin|cantante|chanteur|chanteuse|sänger|sängerin|"
    "bailarina|danseuse|musician|singer|painter|artist|actor|actress|dancer|musicien|músico|"
    "musiker|harpsichordist|violinist|pianist|jester|clown|performer|entertainer|magician|"
    "acrobat|juggler|illustrator|sculptor|photographer|歌手|画家|演员",
    "trade": "saleswoman|cashier|retailer|vendor|peddler|broker|auctioneer|pawnbroker|realtor|"
    "estate agent|investor|financier|bookkeeper|teller|shop owner|store owner|storekeeper|"
    "businessman|businesswoman|tendero|tendera|vendedor|vendedora|kaufmann|verkäufer|"
    "verkäuferin|vendeur|vendeuse|merchant|shopkeeper|trader|banker|moneylender|accountant|"
    "clerk|salesman|marchand|comerciante|händler|商人",
    "land": "rancher|cowboy|cowgirl|herder|goatherd|shepherdess|forester|lumberjack|"
    "woodcutter|miner|fisher|fisherwoman|trapper|gamekeeper|falconer|florist|landscaper|"
    "farmhand|groundskeeper|pescador|pescadora|pêcheur|fischer|minero|mineur|bergmann|"
    "campesino|campesina|paysan|paysanne|farmer|gardener|beekeeper|shepherd|fisherman|hunter|"
    "ranger|jardinier|jardinera|granjero|gärtner|gärtnerin|bauer|农民|园丁",
    "faith": "pastor|vicar|minister|rabbi|imam|bishop|cardinal|abbot|abbess|friar|prophet|"
    "shaman|druid|priestess|missionary|exorcist|necromancer|warlock|sorceress|enchantress|"
    "fortune teller|psychic|astrologer|monja|monje|nonne|mönch|religieuse|cura|priest|monk|"
    "nun|wizard|witch|mage|sorcerer|oracle|prêtre|sacerdote|priester|和尚",
    "royalty": "duke|duchess|countess|baron|baroness|earl|lord|nobleman|noblewoman|aristocrat|"
    "heir|heiress|sultan|pharaoh|chieftain|king|queen|prince|princess|emperor|empress|monarch|"
    "rey|reina|roi|reine|könig|königin|国王|女王|公主",
    "service": "servant|maid|butler|housekeeper|caretaker|janitor|cleaner|nanny|valet|footman|"
    "doorman|bellhop|concierge|steward|criado|criada|sirvienta|domestique|diener|dienerin",
    "office": "freelancer|administrator|executive|software engineer|data scientist|politician|"
    "mayor|senator|diplomat|ambassador|dignitary|paralegal|civil servant|bureaucrat|intern|"
    "office worker|business owner|entrepreneur|designer|developer|programmer|consultant|"
    "manager|specialist|analyst|secretary|receptionist|conservationist|architect|lawyer|"
    "attorney|journalist|influencer|streamer|ceo",
}
# Where a trade is practised: a card that says "runs a garage" names the craft group.
WORKPLACES = {
    "medicine": "clinic|hospital|surgery|infirmary|pharmacy|ward|hôpital|clínica|klinik|医院",
    "food": "bakery|kitchen|café|cafe|coffee bar|coffee|tea house|tavern|inn|bar|restaurant|"
    "boulangerie|panadería|taberna|bäckerei|面包店|饭馆",
    "craft": "garage|workshop|forge|atelier|taller|werkstatt|绣坊|工作室",
    "travel": "ship|airship|boat|harbour|harbor|freighter|lighthouse|station|navire|barco|schiff|船",
    "learning": "library|school|archive|academy|university|bibliothèque|librairie|biblioteca|"
    "schule|图书馆|学校",
    "land": "farm|orchard|garden|hives|greenhouse|park|forest|ferme|granja|hof|garten|农场|森林",
    "faith": "temple|shrine|church|chapel|monastery|temple|iglesia|kirche|庙",
    "trade": "shop|market|store|stall|boutique|bank|tienda|laden|商店",
    "arms": "barracks|fort|garrison|precinct|office|agency",
}
# A trade's field, as in "I work in the fashion industry" or "in the business of banking".
FIELDS = {
    "medicine": "medicine|herbalism|herbal medicine|healthcare|health care|nursing|midwifery",
    "science": "science|research|engineering|astronomy|chemistry|physics|biology",
    "food": "baking|cooking|catering|hospitality|restaurant|brewing",
    "craft": "fashion|tailoring|carpentry|jewelry|jewellery|embroidery|metalwork|smithing|"
    "pottery|clockmaking",
    "arts": "music|art|arts|photography|film|theatre|theater|entertainment|painting",
    "learning": "education|teaching|publishing|journalism|writing|academia",
    "trade": "banking|finance|retail|sales|marketing|real estate|commerce|trading",
    "land": "farming|agriculture|fishing|gardening|forestry|horticulture",
    "travel": "shipping|aviation|navigation|transport|logistics",
    "arms": "security|law enforcement|the military|military|policing",
    "office": "tech|technology|software|consulting|law|advertising|insurance",
}
FIELD_OF = {w: g for g, words in FIELDS.items() for w in words.split("|")}
FIELD_WORD = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, FIELD_OF), key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)
TRADE_OF = {w: g for g, words in {**TRADES}.items() for w in words.split("|")}
WORKPLACE_OF = {w: g for g, words in WORKPLACES.items() for w in words.split("|")}
WORKPLACE_WORD = re.compile(
    r"\b("
    + "|".join(
        sorted(
            map(
                re.escape,
                (w for w in WORKPLACE_OF if w.isascii() or not re.search("[\u3400-\u9fff]", w)),
            ),
            key=len,
            reverse=True,
        )
    )
    + r")s?\b|("
    + "|".join(w for w in WORKPLACE_OF if re.search("[\u3400-\u9fff]", w))
    + ")",
    re.IGNORECASE,
)
TRADE_WORD = re.compile(
    r"\b("
    + "|".join(
        sorted(
            (w for w in TRADE_OF if w.isascii() or not re.search("[\u3400-\u9fff]", w)),
            key=len,
            reverse=True,
        )
    )
    + r")s?\b|("
    + "|".join(
        sorted((w for w in TRADE_OF if re.search("[\u3400-\u9fff]", w)), key=len, reverse=True)
    )
    + ")",
    re.IGNORECASE,
)


def _lexicon(words) -> tuple[set[str], list[str]]:
    words = {w.replace("\\", "") for w in words}
    han = sorted((w for w in words if re.search("[\u3400-\u9fff]", w)), key=len, reverse=True)
    return {w for w in words if w not in han}, han


LEXICONS = {
    id(KIND_WORD): _lexicon([*KIND_OF, "ai", "ki"]),
    id(TRADE_WORD): _lexicon(TRADE_OF),
    id(WORKPLACE_WORD): _lexicon(WORKPLACE_OF),
}
# Titles in a card's name that state a trade or a sex.
TITLE_FACTS = {
    "dr": ("trade", "medicine"), "doctor": ("trade", "medicine"), "captain": ("trade", "travel"),
    "capt": ("trade", "travel"), "professor": ("trade", "science"), "prof": ("trade", "science"),
    "lady": ("sex", "female"), "madame": ("sex", "female"), "mrs": ("sex", "female"),
    "miss": ("sex", "female"), "doña": ("sex", "female"), "señora": ("sex", "female"),
    "frau": ("sex", "female"), "sir": ("sex", "male"), "lord": ("sex", "male"),
    "mr": ("sex", "male"), "monsieur": ("sex", "male"), "don": ("sex", "male"),
    "señor": ("sex", "male"), "herr": ("sex", "male"),
}  # fmt: skip


def words_of(pattern: re.Pattern, text: str) -> list[str]:
    """The lexicon words of `pattern` in `text`, in order. A dictionary look-up of each
    word and word pair stands in for the regular expression (an alternation of hundreds of
    words is slow in `re`); Han words are found as substrings."""
    lexicon, han = LEXICONS[id(pattern)]
    # a word keeps its dots ("a.i.") unless only its sentence's full stop ("baker.")
    words = [
        w if w in lexicon or not w.endswith(".") else w.rstrip(".")
        for w in re.findall(r"[^\W\d_][\w.'’-]*", text.lower())
    ]
    out = []
    i = 0
    while i < len(words):
        pair = f"{words[i]} {words[i + 1]}" if i + 1 < len(words) else ""
        if pair in lexicon:
            out.append(pair)
            i += 2
            continue
        word = words[i]
        singular = word[:-1] if word.endswith("s") else word
        if word in lexicon:
            out.append(word)
        elif singular in lexicon:
            out.append(singular)
        i += 1
    if han and re.search("[\u3400-\u9fff]", text):
        out += [w for w in han if w in text]
    return out


# A card's tag that names a person, or a sex, in the languages cards are written in
# (English's own words are read by the lexicon): "umano", "bărbat", "kobieta", "女性".
HUMAN_TAGS = frozenset(
    """umano umana essere umano humano humana ser humano humain humaine être humain mensch
    om człowiek manusia orang insan người 人間 人类 人類 ヒト 인간 사람""".split()
) | {"essere umano", "ser humano", "être humain"}
SEX_TAGS = {
    "female": frozenset(
        """female woman girl donna femmina ragazza bambina mujer femenina niña chica femme fille
        frau mädchen femeie fată kobieta dziewczyna dziewczynka perempuan wanita gadis kadın
        kız mulher menina 女性 女 女の子 少女 女人 女孩 여자 여성 소녀""".split()
    ),
    "male": frozenset(
        """male man boy uomo maschio ragazzo bambino hombre masculino niño chico homme garçon
        mann junge bărbat băiat mężczyzna chłopiec laki-laki pria erkek oğlan homem menino
        男性 男 男の子 少年 男人 男孩 남자 남성 소년""".split()
    ),
}
# The visitor's part, which a card's scenario gives the user: "I'm just a customer", "I'm a
# guest here" from the character is a role swap. Not "a traveller" or "a stranger", which
# wanderers and outsiders say of themselves.
VISITORS = frozenset(
    "customer customers client clients guest guests visitor visitors tourist tourists".split()
)
