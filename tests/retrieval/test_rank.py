from retrieval.rank import reciprocal_rank_fusion, spread_over_pages


def test_items_found_by_both_rankings_win():
    fused = reciprocal_rank_fusion({"vector": [1, 2, 3], "text": [3, 4, 1]}, k=60)
    assert [item for item, _, _ in fused][:2] == [1, 3]
    assert fused[0][2] == {"vector": 1, "text": 3}


def test_scores_are_sum_of_reciprocal_ranks():
    fused = dict((item, score) for item, score, _ in reciprocal_rank_fusion({"a": ["x"], "b": ["y", "x"]}, k=1))
    assert fused["x"] == 1 / 2 + 1 / 3
    assert fused["y"] == 1 / 2


def test_a_weighted_ranking_counts_that_many_times():
    rankings = {"vector": ["x", "y"], "text": ["x", "y"], "feedback": ["y"]}
    assert [i for i, _, _ in reciprocal_rank_fusion(rankings, k=10)] == ["y", "x"]
    assert [i for i, _, _ in reciprocal_rank_fusion(rankings, k=10, weights={"feedback": 0.1})] == ["x", "y"]
    fused = dict((i, score) for i, score, _ in reciprocal_rank_fusion(rankings, k=10, weights={"feedback": 2}))
    assert fused["y"] == 1 / 12 + 1 / 12 + 2 / 11


def test_single_ranking_keeps_its_order_and_empty_is_empty():
    assert [i for i, _, _ in reciprocal_rank_fusion({"text": [5, 4, 9]})] == [5, 4, 9]
    assert reciprocal_rank_fusion({"vector": [], "text": []}) == []


def test_spread_over_pages_caps_each_page_and_keeps_the_order():
    pages = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "a4": "A", "c1": "C"}
    assert spread_over_pages(list(pages), pages, k=4, per_page=2) == ["a1", "a2", "b1", "c1"]
    assert spread_over_pages(list(pages), pages, k=3, per_page=1) == ["a1", "b1", "c1"]


def test_spread_over_pages_fills_with_the_best_others_when_few_pages_are_found():
    pages = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "a4": "A"}
    assert spread_over_pages(list(pages), pages, k=4, per_page=2) == ["a1", "a2", "a3", "b1"]
    assert spread_over_pages(["a1"], pages, k=6, per_page=2) == ["a1"]
