from bot.feedback import classify_reply, rating_value
from retrieval.config import Settings


def test_reaction_map_with_skin_tones_and_non_ratings():
    s = Settings()
    assert rating_value("+1", s.positive_reactions, s.negative_reactions) == 1
    assert rating_value("thumbsup::skin-tone-4", s.positive_reactions, s.negative_reactions) == 1
    assert rating_value("-1", s.positive_reactions, s.negative_reactions) == -1
    assert rating_value("no_entry", s.positive_reactions, s.negative_reactions) == -1
    assert rating_value("eyes", s.positive_reactions, s.negative_reactions) is None


def test_corrections_dispute_or_restate_facts_comments_do_not():
    for text in ("Wrong, it's 5 days.", "Actually the limit changed", "should be the Plus page", "It is 12 days now"):
        assert classify_reply(text) == "correction", text
    for text in ("Thanks, but it is 12 days now", "10 days, not 5"):
        assert classify_reply(text) == "correction", text
    for text in ("thanks!", "great, that helps", "cc <@U123> fyi", "thanks, that helped with my 2 kids"):
        assert classify_reply(text) == "comment", text
