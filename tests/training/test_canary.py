"""The canary's comparison of served and trained log-probabilities (pure)."""

from __future__ import annotations

import math

import pytest

from core.canary import Reference, Step, deviation


def test_identical_generations_deviate_by_nothing():
    steps = [Step(5, -0.1, {5: -0.1, 6: -2.0}), Step(7, -0.2, {7: -0.2, 8: -3.0})]
    assert deviation(steps, steps) == 0.0


def test_the_largest_difference_of_any_shared_token_counts():
    trained = [Step(5, -0.1, {5: -0.1, 6: -2.0}), Step(7, -0.2, {7: -0.2, 8: -3.0})]
    served = [Step(5, -0.1, {5: -0.1, 6: -2.05}), Step(7, -0.23, {7: -0.23, 9: -4.0})]
    assert deviation(trained, served) == pytest.approx(0.05)


def test_a_near_tie_chosen_differently_is_compared_there_and_the_walk_stops():
    trained = [Step(5, -0.69, {5: -0.69, 6: -0.70}), Step(7, -0.1, {7: -0.1})]
    served = [Step(6, -0.69, {6: -0.69, 5: -0.70}), Step(99, -5.0, {99: -5.0})]  # continues elsewhere
    assert deviation(trained, served) == pytest.approx(0.01)


def test_a_token_the_trained_model_does_not_rank_is_an_infinite_deviation():
    trained = [Step(5, -0.01, {5: -0.01, 6: -6.0})]
    served = [Step(42, -0.5, {42: -0.5, 5: -1.0})]
    assert deviation(trained, served) == math.inf


def test_a_server_that_stops_early_is_compared_on_what_it_generated():
    trained = [Step(5, -0.1, {5: -0.1}), Step(2, -0.2, {2: -0.2})]
    assert deviation(trained, trained[:1]) == 0.0


def test_references_survive_json_storage():
    ref = Reference([1, 2, 3], [Step(5, -0.1, {5: -0.1, 6: -2.0})])
    stored = {"prompt_ids": [1, 2, 3], "steps": [{"token": 5, "logprob": -0.1, "top": {"5": -0.1, "6": -2.0}}]}
    assert ref.as_dict()["steps"][0]["top"] == {5: -0.1, 6: -2.0}
    assert Reference.from_dict(stored) == ref
