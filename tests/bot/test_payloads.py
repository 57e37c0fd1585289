import pytest

from bot.payloads import asks_the_bot, channel_allowed, is_user_message, spaces_for, strip_mentions, to_question
from core.config import Settings
from loopback import slack_events as ev


def test_mention_event_becomes_a_question_in_its_thread():
    body = ev.event_callback(ev.app_mention("U1", "C1", "<@UBOT> what is the deductible?", ts="10.1"))
    q = to_question(body["event"], body, "UBOT")
    assert (q.text, q.user, q.channel, q.ts, q.thread_ts, q.is_dm, q.in_thread) == (
        "what is the deductible?", "U1", "C1", "10.1", "10.1", False, False)
    assert q.event_id == body["event_id"] and q.team == "T1"


def test_reply_in_thread_keeps_the_thread_and_other_mentions():
    body = ev.event_callback(ev.app_mention("U1", "C1", "<@UBOT> ask <@U9> too?", ts="11.1", thread_ts="10.1"))
    q = to_question(body["event"], body, "UBOT")
    assert q.thread_ts == "10.1" and q.in_thread and q.text == "ask <@U9> too?"


def test_dm_is_recognised():
    body = ev.event_callback(ev.message_im("U1", "hi there"))
    assert to_question(body["event"], body, "UBOT").is_dm


def test_edits_deletions_and_bots_are_not_user_messages():
    assert is_user_message(ev.channel_message("U1", "C1", "hello"))
    assert not is_user_message(ev.message_changed("C1", "1.1", "new", "U1"))
    assert not is_user_message(ev.message_deleted("C1", "1.1"))
    assert not is_user_message(ev.bot_message("B2", "C1", "beep"))


def test_followup_rule():
    assert asks_the_bot("<@UBOT> and for Plus?", "UBOT", "mention")
    assert not asks_the_bot("and for Plus?", "UBOT", "mention")
    assert asks_the_bot("and for Plus?", "UBOT", "question_mark")
    assert not asks_the_bot("Wrong, it is 5 days since 2024.", "UBOT", "question_mark")


def test_allow_list_and_spaces():
    s = Settings(allowed_channels=["C1"], channel_spaces={"C1": ["hr"], "*": ["it"]})
    assert channel_allowed("C1", False, s) and not channel_allowed("C2", False, s)
    assert channel_allowed("C2", False, Settings())
    assert spaces_for("C1", False, s) == ["hr"] and spaces_for("C2", False, s) == ["it"]
    assert spaces_for("C2", False, Settings()) is None
    assert strip_mentions("<@UBOT|wikibot>  hello   <@UBOT>", "UBOT") == "hello"


@pytest.mark.parametrize(
    ("settings", "answered", "spaces"),
    [
        ({}, True, None),  # nothing limited anywhere: DMs see every space
        ({"allowed_channels": ["C1"]}, False, None),  # a bot kept to some channels is not asked privately...
        ({"allowed_channels": ["C1"], "allow_dms": True}, True, None),  # ...until told to
        ({"channel_spaces": {"C1": ["hr"]}}, False, []),  # channels limited, nothing said for DMs: no space
        ({"channel_spaces": {"C1": ["hr"], "*": ["it"]}}, True, ["it"]),  # DMs are one of the other channels
        ({"channel_spaces": {"C1": ["hr"]}, "dm_spaces": ["it", "hr"]}, True, ["it", "hr"]),
        ({"dm_spaces": []}, False, []),
        ({"allow_dms": False}, False, None),
    ],
)
def test_direct_messages_have_their_own_scope(settings: dict, answered: bool, spaces: list[str] | None):
    s = Settings(**settings)
    assert (channel_allowed("D1", True, s), spaces_for("D1", True, s)) == (answered, spaces)
