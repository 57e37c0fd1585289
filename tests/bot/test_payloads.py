from bot.payloads import asks_the_bot, channel_allowed, is_user_message, spaces_for, strip_mentions, to_question
from tests.support import slack_events as ev


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
    assert channel_allowed("C1", False, [], True) and not channel_allowed("C2", False, ["C1"], True)
    assert channel_allowed("D1", True, ["C1"], True) and not channel_allowed("D1", True, [], False)
    assert spaces_for("C1", {"C1": ["hr"], "*": ["it"]}) == ["hr"]
    assert spaces_for("C2", {"C1": ["hr"], "*": ["it"]}) == ["it"]
    assert spaces_for("C2", {}) is None
    assert strip_mentions("<@UBOT|wikibot>  hello   <@UBOT>", "UBOT") == "hello"
