from bot.home import HomeStats, accuracy_chart, home_view


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
