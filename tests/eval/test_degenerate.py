"""eval.degenerate: which classifier rows are warned about, from the rows alone."""
from eval.degenerate import predicted, row_warnings


def row(matrix, accuracy=0.5, labels=("a", "b")):
    return {"confusion": {"labels": list(labels), "matrix": matrix}, "accuracy": accuracy, "n_test": 10, "n_train": 6}


def test_one_predicted_class_is_warned_for_every_trained_row():
    one, two = row([[5, 0], [5, 0]]), row([[4, 1], [2, 3]])
    assert predicted(one["confusion"]) == ["a"] and predicted(two["confusion"]) == ["a", "b"]
    report = {"classification": one, "tstr": two, "gold_trained": one,
              "references": {"gold_size_matched": None, "majority": {"accuracy": 0.5, "label": "a"}}}
    w = row_warnings(report)
    assert [x.split(":")[0] for x in w] == ["`classification`", "`gold_trained`"]
    assert "predicts 'a' for all 10 test texts" in w[0]


def test_a_gold_reference_below_the_majority_row_is_warned_but_not_tstr():
    majority = {"accuracy": 0.6, "label": "b"}
    report = {"classification": None, "tstr": row([[1, 4], [1, 4]], 0.1), "gold_trained": row([[3, 2], [2, 3]], 0.6),
              "references": {"majority": majority, "gold_size_matched": row([[3, 2], [3, 2]], 0.59)}}
    assert row_warnings(report) == ["`references.gold_size_matched`: accuracy 0.590 is below the majority-class "
                                    "row's 0.600 (always 'b'): 6 training texts are too few to learn from, and "
                                    "the row is no reference"]
    assert row_warnings({"classification": None}) == []  # no gold: nothing to compare
