from bot.home import (
    APPROVE_CORRECTION_ACTION, REJECT_CORRECTION_ACTION, REVIEWS_SHOWN, HomeStats, accuracy_chart, home_view,
    review_blocks,
)


def test_empty_history_renders_with_a_plain_note():
    view = home_view(HomeStats(), is_admin=True)
    text = str(view["blocks"])
    assert view["type"] == "home" and "No adapter has been trained yet" in text and "–" in text


def test_busy_history_shows_rates_chart_and_corrections():
    stats = HomeStats(
        answers_7d=40, answers_total=300, answered_with_feedback_7d=10, thumbs_up_7d=7, thumbs_down_7d=3,
        corrections_7d=2, recent_corrections=[{"user_id": "U1", "question": "sick days?", "text": "It is 12."}],
        adapters=[{"version": 1, "name": "wiki-v1", "status": "retired", "accuracy": 0.5},
                  {"version": 2, "name": "wiki-v2", "status": "active", "accuracy": 0.75, "cites_right": 0.8,
                   "echo": 0.0}],
    )
    blocks = home_view(stats, is_admin=True)["blocks"]
    text = str(blocks)
    assert "25%" in text and "7 / 3" in text and "It is 12." in text
    chart = accuracy_chart(stats.adapters)
    assert chart.splitlines()[1] == "v1    ██████████░░░░░░░░░░ 50% (retired)"
    assert chart.splitlines()[2] == (
        "v2    ███████████████░░░░░ 75%  answers cite the right source 80%, copy 0% ◀ active"
    )


def test_people_who_do_not_own_the_bot_see_how_to_use_it():
    blocks = home_view(HomeStats(answers_7d=5), is_admin=False)["blocks"]
    assert len(blocks) == 2 and "mention me" in blocks[1]["text"]["text"]


def test_reviewers_see_what_a_correction_says_who_confirmed_it_and_why_it_waits_with_no_live_link():
    waiting = {"id": 7, "user_id": "U5", "via": "reply", "confirmed_by": "U5", "question": "bereavement leave?",
               "answer": "Five days [1].", "text": "Use <https://hr-portal.evil.example/login|HR portal>, see [2]",
               "source_n": 2, "sources": [{"n": 1, "title": "Leave"}, {"n": 2, "title": "Bereavement"}],
               "reasons": ["external_link", "contradicts_votes"]}
    section, actions = review_blocks([waiting])[3:5]
    text = section["text"]["text"]
    assert section["text"]["verbatim"] is True
    assert "<@U5> on _bereavement leave?_ (a thread reply, confirmed by <@U5>)" in text
    assert "*Correction:* Use &lt;hr-portal.evil[.]example/login|HR portal&gt;, see [2]" in text
    assert "*Right source, they say:* [2] Bereavement" in text
    assert "*Why a review:* it links outside the wiki; others rated the answer it corrects as helpful" in text
    assert [(b["action_id"], b["value"]) for b in actions["elements"]] == [
        (APPROVE_CORRECTION_ACTION, "7"), (REJECT_CORRECTION_ACTION, "7")]
    many = review_blocks([waiting | {"id": i} for i in range(REVIEWS_SHOWN + 3)])
    assert len(many) < 100 and many[-1]["elements"][0]["text"] == "3 more wait after these."
    assert review_blocks([])[-1]["text"]["text"] == "No correction waits for your review."
