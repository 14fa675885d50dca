"""eval.labels: the fixed label order, and --label-map in every form with its errors and its account."""
import pytest

from eval.data import Labelled
from eval.labels import apply_label_map, label_order, parse_label_map
from common.errors import UsageError

CARER = ["sadness", "joy", "love", "anger", "fear", "surprise"]
PAPER = Labelled([f"t{i}" for i in range(14)],
                 ["joy", "anger", "sadness", "pleasure", "surprise", "fear", "neutral"] * 2)


def test_label_order_is_declared_then_a_preset_then_sorted():
    assert label_order(["fear", "joy", "fear"], ["fear", "x", "joy"]) == ["fear", "joy"]
    assert label_order(["surprise", "love", "sadness"]) == ["sadness", "love", "surprise"]  # CARER's order
    assert label_order(["neutral", "joy"]) == ["joy", "neutral"]  # the paper's
    assert label_order(["b", "c", "a"]) == ["a", "b", "c"]
    assert label_order(["b", "a"], ["x", "y"]) == ["a", "b"]  # a declared order that lacks them is not used


def test_parse_inline_json_emotion_file_and_lines(tmp_path):
    assert parse_label_map("pleasure=joy, neutral=drop") == {"pleasure": "joy", "neutral": None}
    (tmp_path / "m.json").write_text('{"pleasure": "joy", "neutral": null, "calm": "drop"}')
    assert parse_label_map(str(tmp_path / "m.json")) == {"pleasure": "joy", "neutral": None, "calm": None}
    (tmp_path / "e.json").write_text('{"labels": ["joy", "pleasure"], "map": {"pleasure": "joy"}}')
    assert parse_label_map(str(tmp_path / "e.json")) == {"pleasure": "joy"}
    (tmp_path / "m.txt").write_text("# paper -> carer\npleasure = joy\n\nneutral=drop  # no such gold label\n")
    assert parse_label_map(str(tmp_path / "m.txt")) == {"pleasure": "joy", "neutral": None}


@pytest.mark.parametrize("spec, message", [
    ("pleasure", "expected 'label=gold_label' or 'label=drop', got 'pleasure'"),
    ("pleasure=joy,=fear", "got '=fear'"),
    ("a=b,a=c", "'a' is mapped twice"),
    ("missing.json", "no such file"),
])
def test_bad_maps(spec, message):
    with pytest.raises(UsageError, match=message):
        parse_label_map(spec)


def test_bad_json_maps(tmp_path):
    (tmp_path / "a.json").write_text("[1, 2]")
    with pytest.raises(UsageError, match="expected a JSON object"):
        parse_label_map(str(tmp_path / "a.json"))
    (tmp_path / "b.json").write_text("{oops")
    with pytest.raises(UsageError, match="not valid JSON"):
        parse_label_map(str(tmp_path / "b.json"))


def test_apply_maps_drops_and_accounts_for_every_label():
    mapped, keep, account = apply_label_map(PAPER, {"pleasure": "joy", "neutral": None, "calm": "joy"}, CARER, "d")
    assert len(mapped) == 12 and keep == [i for i in range(14) if i % 7 != 6]
    assert mapped.emotions[:6] == ["joy", "anger", "sadness", "joy", "surprise", "fear"]
    assert account["dropped"] == {"neutral": 2} and account["gold_without_synthetic"] == ["love"]
    assert account["map_unused"] == ["calm"] and account["map"]["neutral"] == "drop"
    assert account["synthetic"] == {"sadness": 2, "joy": 4, "anger": 2, "fear": 2, "surprise": 2}


def test_apply_errors():
    with pytest.raises(UsageError, match=r"maps to labels the gold set lacks \(sadness, .*\): pleasure=happiness"):
        apply_label_map(PAPER, {"pleasure": "happiness"}, CARER, "d")
    with pytest.raises(UsageError, match=r"d \(after --label-map\) has emotions not in the gold .*: neutral; map"):
        apply_label_map(PAPER, {"pleasure": "joy"}, CARER, "d")
    with pytest.raises(UsageError, match="look like ids: name them with --label-names"):
        apply_label_map(PAPER, {}, ["0", "1"], "d")
    with pytest.raises(UsageError, match="drops every text"):
        apply_label_map(Labelled(["a"], ["neutral"]), {"neutral": None}, CARER, "d")
