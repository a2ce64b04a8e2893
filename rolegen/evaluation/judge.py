"""A model judge of character replies, for users who have a strong model behind an
OpenAI-compatible server (vLLM, llama.cpp's server, TGI, Ollama, a hosted API), reached
through the official `openai` client as the server engine is.

Each reply is one chat request: a short rubric, the card (name, description,
personality) and the last few messages as context, then the reply. The judge answers
four questions, one `key: yes|no` line each:
- in_character: the reply stays the character the card describes;
- wrong_identity: it presents the character as someone else (name, age, sex, kind, trade);
- acts_for_user: it decides what the user does, says, perceives or feels, or asks the
  user's own request back as the character's;
- helper_voice: a generic helpful assistant speaks instead of the character.

The answers become four faults (1.0 flags, 0.0 does not, None: missing), named
`judge_<fault>` as metric rows' fields and as filter reasons: out_of_character,
wrong_identity, acts_for_user, helper_voice. The parser takes `key: yes` lines in any
case, with bullets, bold or JSON quoting around them; a key that is absent, answered
twice differently, or answered with the template's own "yes|no" is missing, never
guessed. A request that still fails after its retries reads missing for all four and is
counted; when every request fails the run stops with one line naming the server.

Agreement with the pattern checks: Cohen's kappa per fault against the check that means
the same (wrong identity: `wrong_identity`; acting for the user: the `user` check;
helper voice: `assistant_drift`; out of character: any persona fault of the checks).

The API key comes from an environment variable and is never stored; the server is
recorded without credentials (`urls.public_url`).
Not handled: judging in a language other than English (the rubric is English; the card
and the turns go as they are), and caching verdicts across runs.
"""

from __future__ import annotations

import asyncio
import os
import re

import numpy as np
from tqdm import tqdm

from rolegen.cards.files import card_for_record
from rolegen.cards.personas import substitute_macros
from rolegen.config.judge import DEFAULT_KEY_VARIABLES, REASONS, JudgeConfig
from rolegen.config.judge import FAULTS as FAULT_NAMES
from rolegen.errors import RolegenError
from rolegen.urls import public_url

QUESTIONS = {
    "in_character": "Does the reply stay in character as {char}, the character the card "
    "describes (their voice, their world, their knowledge)?",
    "wrong_identity": "Does the reply present {char} as someone else: another name, or an "
    "age, sex, species or kind, or trade that contradicts the card (narration included)?",
    "acts_for_user": "Does the reply decide for the user what they do, say, see or feel "
    '(e.g. "*you nod and step aboard*", "you take a closer look and see"), or ask the '
    "user's own request back as if it were the character's? Narrating {char}'s own actions "
    'toward the user ("*she hands you a cup*") does not count.',
    "helper_voice": "Does the reply speak as a generic helpful assistant instead of "
    '{char} (e.g. "How can I help you?", "Feel free to ask me anything")?',
}
# fault -> (question, the answer that flags it)
FAULTS = {
    "out_of_character": ("in_character", "no"),
    "wrong_identity": ("wrong_identity", "yes"),
    "acts_for_user": ("acts_for_user", "yes"),
    "helper_voice": ("helper_voice", "yes"),
}
FIELDS = dict(zip(FAULT_NAMES, REASONS))  # fault -> metric row field and filter reason
LABELS = {
    "out_of_character": "out of character",
    "wrong_identity": "wrong identity",
    "acts_for_user": "acts for the user",
    "helper_voice": "helper voice",
}
# the pattern check (a metrics row field) each fault is compared with
CHECK_OF = {
    "out_of_character": "persona_fault",
    "wrong_identity": "wrong_identity",
    "acts_for_user": "acts_for_user",
    "helper_voice": "assistant_drift",
}
# the checks' persona faults: a turn with none of them is "in character" to the checks
# (identity echo is repetition of a self-introduction, not a departure from the card)
PERSONA_FAULTS = (
    "wrong_identity", "identity_confusion", "identity_miss", "assistant_drift", "acts_for_user",
    "ooc",
)  # fmt: skip
_CARD_CHARS = 1500  # per card field: a long lorebook-style description would crowd the turns
_TURN_CHARS = 1200

_RUBRIC = (
    "You judge one reply in a roleplay chat. {char} is a character described by the card "
    "below; {user} is the person chatting with {char}. Read the card, the last messages "
    "and the reply, then answer each question about the reply alone with yes or no.\n\n"
    "{questions}\n\n"
    "Answer with exactly these four lines and nothing else:\n"
    "in_character: yes or no\nwrong_identity: yes or no\nacts_for_user: yes or no\n"
    "helper_voice: yes or no"
)


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


def judge_messages(
    name: str, description: str, personality: str, context: list[dict], reply: str, user="User"
) -> list[dict]:
    """The chat request for one reply: the rubric as the system message; the card, the
    `context` messages (role user or assistant, oldest first) and the reply as the user's."""
    questions = "\n".join(f"{k}: {q.format(char=name)}" for k, q in QUESTIONS.items())
    card = [f"Name: {name}"]
    for label, text in (("Description", description), ("Personality", personality)):
        if text.strip():
            card.append(f"{label}: {_clip(substitute_macros(text, name, user), _CARD_CHARS)}")
    turns = [
        f"{user if m['role'] == 'user' else name}: {_clip(m['content'], _TURN_CHARS)}"
        for m in context
    ]
    body = "Card:\n" + "\n".join(card) + "\n\nLast messages:\n"
    body += "\n".join(turns) if turns else "(none: the reply opens the chat)"
    body += f"\n\nThe reply to judge ({name}):\n{_clip(reply, _TURN_CHARS * 2)}"
    return [
        {"role": "system", "content": _RUBRIC.format(char=name, user=user, questions=questions)},
        {"role": "user", "content": body},
    ]


def _key_pattern(key: str) -> re.Pattern:
    words = r"[\s_-]?".join(key.split("_"))
    # the key, then up to a few quotes, colons, asterisks or spaces, then the answer; an
    # answer followed by "|", "/" or "or" is the template echoed back, not a verdict
    return re.compile(
        rf"\b{words}\b[\s\"'*:=\-]{{0,6}}(yes|no|true|false)\b(?!\s*(?:[|/]|or\b))", re.IGNORECASE
    )


_KEYS = {key: _key_pattern(key) for key in QUESTIONS}
_THINK = re.compile(r"<think>.*?(</think>|$)", re.IGNORECASE | re.DOTALL)


def parse_answer(text: str | None) -> dict[str, float | None]:
    """fault -> 1.0 (flagged), 0.0 (not) or None (missing) from the judge's answer."""
    if not text:
        return {fault: None for fault in FAULTS}
    text = _THINK.sub("", text)  # a model that thinks first: only what follows counts
    out: dict[str, float | None] = {}
    for fault, (key, flags) in FAULTS.items():
        said = {m.group(1).lower() for m in _KEYS[key].finditer(text)}
        said = {"yes" if s in ("yes", "true") else "no" for s in said}
        out[fault] = float(said == {flags}) if len(said) == 1 else None
    return out


def cohen_kappa(a: list[float], b: list[float]) -> float | None:
    """Cohen's kappa of two 0/1 ratings of the same items; None when chance agreement is
    total (both raters constant and equal, or no items): kappa is undefined there."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not len(x):
        return None
    observed = float(np.mean(x == y))
    chance = float(x.mean() * y.mean() + (1 - x.mean()) * (1 - y.mean()))
    if chance >= 1:
        return None
    return round((observed - chance) / (1 - chance), 4)


# ---------------------------------------------------------------- the requests


def _api_key(cfg: JudgeConfig) -> str:
    if cfg.judge_api_key_env:
        key = os.environ.get(cfg.judge_api_key_env, "")
        if not key:
            raise RolegenError(
                f"--judge-api-key-env {cfg.judge_api_key_env}: that environment variable is empty"
            )
        return key
    return next((os.environ[v] for v in DEFAULT_KEY_VARIABLES if os.environ.get(v)), "EMPTY")


async def _ask_all(cfg: JudgeConfig, requests: list[list[dict]], url: str) -> dict:
    """Every request, at most `judge_concurrency` in flight: the model judged with and the
    answers (None: failed after the retries) with the first failure's text."""
    import openai

    errors = (openai.APIError, openai.APIConnectionError, openai.APITimeoutError)
    client = openai.AsyncOpenAI(
        base_url=cfg.judge_url,
        api_key=_api_key(cfg),
        timeout=cfg.judge_timeout,
        max_retries=cfg.judge_max_retries,
    )
    try:
        try:
            served = [m.id for m in (await client.models.list()).data]
        except errors as e:
            raise RolegenError(
                f"judge server {url}: {type(e).__name__}: {_first_line(e)}"
            ) from None
        if not served:
            raise RolegenError(f"judge server {url} serves no model (GET /models is empty)")
        model = cfg.judge_model or served[0]
        if model not in served:
            raise RolegenError(f"--judge-model {model}: {url} serves {', '.join(served)}")
        gate = asyncio.Semaphore(cfg.judge_concurrency)
        bar = tqdm(total=len(requests), desc="judge", unit="reply", dynamic_ncols=True)
        failures: list[str] = []

        async def one(messages: list[dict]) -> str | None:
            async with gate:
                try:
                    resp = await client.chat.completions.create(
                        model=model,
                        messages=messages,
                        temperature=0,
                        max_tokens=cfg.judge_max_tokens,
                        seed=0,
                    )
                    return resp.choices[0].message.content or ""
                except errors as e:
                    failures.append(f"{type(e).__name__}: {_first_line(e)}")
                    return None
                finally:
                    bar.update(1)

        answers = list(await asyncio.gather(*(one(m) for m in requests)))
        bar.close()
        return {"model": model, "answers": answers, "failures": failures}
    finally:
        await client.close()


def _first_line(error: Exception) -> str:
    return (str(error).splitlines() or [""])[0][:200]


def judge_turns(
    cfg: JudgeConfig, items: list[tuple[dict, int]], personas=()
) -> tuple[list[dict[str, float | None]], dict]:
    """The faults of each (record, k): the k-th assistant message of the record (the checks'
    character index), judged with its card (`personas` first, see `cards.card_for_record`)
    and the `judge_context_turns` messages before it. Also what results.json records of the
    run: the server without credentials, the model, and the answers' counts."""
    try:
        import openai  # noqa: F401
    except ImportError:
        raise RolegenError("the model judge needs the openai package: pip install openai") from None
    url = public_url(cfg.judge_url or "")
    cards: dict[tuple[str, str], object] = {}
    requests = []
    for record, k in items:
        name = record.get("persona_name") or record.get("persona") or "the character"
        where = (name, record.get("persona_source") or "")
        if where not in cards:
            cards[where] = card_for_record(record, name, personas)
        card = cards[where]
        talk = [m for m in record["messages"] if m["role"] in ("user", "assistant")]
        at = [i for i, m in enumerate(talk) if m["role"] == "assistant"][k]
        context = talk[max(0, at - cfg.judge_context_turns) : at] if cfg.judge_context_turns else []
        user = record.get("user_persona") or "User"
        requests.append(
            judge_messages(
                name, card.description, card.personality, context, talk[at]["content"], user
            )
        )
    done = asyncio.run(_ask_all(cfg, requests, url)) if requests else None
    answers = done["answers"] if done else []
    failed = sum(a is None for a in answers)
    if answers and failed == len(answers):
        raise RolegenError(f"judge server {url}: every request failed ({done['failures'][0]})")
    verdicts = [parse_answer(a) for a in answers]
    info = {
        "server": url,
        "model": done["model"] if done else cfg.judge_model,
        "replies": len(items),
        "failed_requests": failed,
        "missing": {
            f: sum(v[f] is None for v, a in zip(verdicts, answers) if a is not None) for f in FAULTS
        },
        "context_turns": cfg.judge_context_turns,
    }
    return verdicts, info


# ---------------------------------------------------------------- eval and filter


def add_verdicts(cfg: JudgeConfig, rows: list[dict], records: list[dict], personas=()) -> dict:
    """Fill each metric row's `judge_*` fields (rows from `metrics.turn_rows`); returns the
    run's info with the agreement with the pattern checks."""
    by_key = {(r.get("system", "data"), r.get("seed_key") or r["id"]): r for r in records}
    items = [(by_key[(row["system"], row["dialogue"])], row["index"]) for row in rows]
    verdicts, info = judge_turns(cfg, items, personas)
    for row, verdict in zip(rows, verdicts):
        for fault, value in verdict.items():
            row[FIELDS[fault]] = value
    info["agreement"] = agreement(rows)
    return info


def _check_value(row: dict, check: str) -> float:
    if check == "persona_fault":
        return float(any(row.get(f) for f in PERSONA_FAULTS))
    return float(row.get(check) or 0)


def agreement(rows: list[dict]) -> dict:
    """system (and "all") -> fault -> the check it is compared with, Cohen's kappa, the
    turns both rated (n), and each rater's share of flags on them."""
    systems = ["all", *dict.fromkeys(r["system"] for r in rows)]
    out: dict = {}
    for system in systems:
        mine = [r for r in rows if system == "all" or r["system"] == system]
        for fault, check in CHECK_OF.items():
            rated = [r for r in mine if r.get(FIELDS[fault]) is not None]
            judge = [r[FIELDS[fault]] for r in rated]
            checks = [_check_value(r, check) for r in rated]
            out.setdefault(system, {})[fault] = {
                "check": check,
                "kappa": cohen_kappa(judge, checks),
                "n": len(rated),
                "judge_share": round(float(np.mean(judge)), 4) if rated else None,
                "check_share": round(float(np.mean(checks)), 4) if rated else None,
            }
    return out


def reasons_by_turn(
    cfg: JudgeConfig, records: list[dict], personas=()
) -> tuple[list[dict[int, list[str]]], dict]:
    """For `rolegen filter`: per record, character index -> the `judge_*` reasons of that
    turn (every reply that answers a user turn is judged; a greeting is not)."""
    items = []
    for n, record in enumerate(records):
        seen_user = False
        k = -1
        for m in record["messages"]:
            seen_user = seen_user or m["role"] == "user"
            if m["role"] == "assistant":
                k += 1
                if seen_user:
                    items.append((n, k))
    verdicts, info = judge_turns(cfg, [(records[n], k) for n, k in items], personas)
    out: list[dict[int, list[str]]] = [{} for _ in records]
    for (n, k), verdict in zip(items, verdicts):
        flagged = [FIELDS[f] for f, v in verdict.items() if v]
        if flagged:
            out[n][k] = flagged
    return out, info
