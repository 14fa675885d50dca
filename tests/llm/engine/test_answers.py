"""Defensive parsing of answers and the post-checks on generated texts."""
import pytest

from llm.engine.answers import parse_label, parse_scores, parse_text, text_problem
from llm.engine.languages import rules_for


@pytest.mark.parametrize(
    "content, label",
    [
        ('{"label": "natural", "reason": "ok"}', "natural"),
        ('```json\n{"label": "Rare but Plausible", "reason": "x"}\n```', "rare but plausible"),
        ('Sure: {"label": "rare-but-plausible"} hope that helps', "rare but plausible"),
        ('{"label": "implausible", "reason": "a 15-year-old lawyer"}', "implausible"),
    ],
)
def test_labels_are_read_through_noise(content, label):
    assert parse_label(content)["label"] == label


@pytest.mark.parametrize(
    "content",
    ["natural", "Sure! Here is my answer: natural", '{"label": "maybe"}', '{"reason": "no label"}', "[1, 2]", ""],
)
def test_anything_else_is_unparseable_not_guessed(content):
    assert parse_label(content) is None


def test_texts_come_out_of_their_json():
    assert parse_text('{"text": "  Finally home!  "}') == "Finally home!"
    assert parse_text("Finally home!") is None
    assert parse_text('{"text": 3}') is None


@pytest.mark.parametrize(
    "text, problem",
    [
        ("Finally home after 3.5 hours... what a day!", None),
        ("Best. Day. Ever.", "more than 2 sentences"),
        ("   ", "empty"),
        ("As an AI, I cannot feel joy.", "meta text"),
        ("Here is a tweet: I love rain.", "meta text"),
        ("I am so full of joy today!", "emotion word leaked"),
        ("電車が止まった。最悪！", None),
        ("電車が止まった。最悪！もう嫌だ。", "more than 2 sentences"),
    ],
)
def test_post_checks(text, problem):
    assert text_problem(text, leak=("joy",)) == problem


def test_the_emotion_word_is_allowed_unless_forbidden():
    assert text_problem("Pure joy!") is None
    assert text_problem("Enjoying it!", leak=("joy",)) is None  # whole words only
    assert rules_for("en").sentences("Wait... what?! No way.") == 3


@pytest.mark.parametrize(
    "content, scores",
    [
        ('{"a": 4, "b": 1}', {"a": 4, "b": 1}),
        ('```json\n{"a": "5", "b": 2.0, "extra": 9}\n```', {"a": 5, "b": 2}),
        ('{"a": 0, "b": 3}', None),  # off the scale
        ('{"a": 6, "b": 3}', None),
        ('{"a": 3.5, "b": 3}', None),
        ('{"a": true, "b": 3}', None),
        ('{"a": 3}', None),  # a criterion missing
        ('{"a": "three", "b": 3}', None),
        ('{"a": NaN, "b": 3}', None),
        ("4", None),
    ],
)
def test_scores_are_whole_numbers_on_the_scale_or_nothing(content, scores):
    assert parse_scores(content, ["a", "b"]) == scores
