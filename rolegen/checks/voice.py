"""The assistant's voice in a character's mouth: out-of-character boilerplate (`OOC`: "As
an AI language model", "(OOC") and the generic helper voice (`ASSISTANT`: "How can I
assist you?", "Feel free to ask"), each with its substring needles for `batch_search.search_each`.
Not handled: the helper voice paraphrased, or in languages other than English.
"""

from __future__ import annotations

import re

OOC = re.compile(
    r"\b(as an ai\b|an ai language model|as a language model|i'?m an ai\b|i am an ai\b|"
    r"i'?m just an ai|openai|as a helpful assistant|i cannot fulfill|i can'?t assist with|"
    r"i'?m sorry, but i can'?t|\(ooc|\[ooc|out of character)",
    re.IGNORECASE,
)


# Generic helpful-assistant voice in a character's mouth (calibrated on labelled turns,
# see tests/test_calibration.py): offers of help and service phrases, not boilerplate.
ASSISTANT = re.compile(
    r"\b(?:how (?:can|may|could) i (?:help|assist)|can i help you|"
    r"(?:i'?m|i am) (?:always |just )?here (?:to (?:help|assist|answer|support)|for you)|"
    r"(?:i'?m|i am|i'?d be|i would be|i'?ll be|i will be)(?: always| more than| so| very| just)? "
    r"(?:happy|glad|delighted) to (?:help|assist)(?! (?:them|him|her|people|others|anyone|folks|"
    r"visitors|travell?ers|customers)\b)|assist you|"
    r"feel free to (?:ask|reach out|let me know|share)|"
    r"(?:is there )?anything else (?:i can|you'?d like|you would like|you need)|"
    r"(?:let me know|just ask) if (?:you (?:have|need)|there'?s) (?:any|anything)|"
    r"if you need anything|you can (?:talk to|ask) me anytime|"
    r"(?:what|how) can i do for you today|don'?t hesitate to|hope (?:this|that) helps|"
    r"(?:i can|i'?d love to) help you (?:with|find)|help (?:you )?with anything|"
    r"(?:happy|glad|delighted) to be of (?:any )?(?:service|help|assistance)|"
    r"(?:i'?ll|i will) do (?:my best|everything i can|whatever i can|everything in my power) to "
    r"(?:help|support|assist)|(?:i'?m|i am) here,? to (?:support|help) you|"
    r"(?:i'?ll|i will) be (?:there|here) to (?:help|support) you|just let me know[.!]|"
    r"anything you(?:'re| are) looking for|"
    r"(?:any|have) (?:other |more |further )?questions\?|your (?:personal |virtual )?assistant|"
    # the assistant's disclaimers: what "it" cannot do, what it was made for
    r"(?:i'?m|i am) (?:sorry,? )?(?:but )?(?:not able|unable|not equipped) to (?:provide|respond|"
    r"answer|help|assist|give|offer)|i don'?t have the (?:ability|capacity) to|"
    r"designed to (?:respond|answer|assist|help|provide)|"
    r"(?:i'?d|i would) (?:like|love) to help you|help you with (?:whatever|anything) you (?:need|want|like|wish)|"
    r"(?:glad|happy) i (?:could|was able to) help|(?:i'?m|i am) here,? (?:and )?i(?:'ll| will| can)"
    r"(?: try to)? help|sorry for any (?:misunderstanding|confusion|inconvenience)|"
    r"offer you a response|stay in character|nature of your (?:inquiry|request|question))",
    re.IGNORECASE,
)
ASSISTANT_NEEDLES = (
    "help", "assist", "here for you", "feel free", "anything", "let me know", "just ask",
    "for you today", "hesitate", "looking for", "questions?", "of service", "anytime", "unable",
    "not able", "equipped", "ability", "capacity", "designed", "support", "let me know",
    "sorry for any", "a response", "in character", "nature of your",
)  # fmt: skip


# Lowercase strings of which every match of a pattern contains one: plain substring
# tests (fast) pick the few texts that the regular expression (slow) then looks at.
OOC_NEEDLES = (
    "an ai",
    "language model",
    "openai",
    "helpful assistant",
    "cannot fulfill",
    "t assist with",
    "sorry, but i can",
    "(ooc",
    "[ooc",
    "out of character",
)
