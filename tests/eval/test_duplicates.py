"""Issue 23: the duplicate rates of eval.report (eval/duplicates.py), against hand-made cases: the rates by hand,
Table IV's columns, report.json's keys, and the copies of gold train texts beside real vs real."""
import orjson

from eval import report
from eval.duplicates import duplicate_rates, gold_copies

A = "We finally moved into the new flat by the sea and it feels wonderful"
B = "The meeting ran late and the printer jammed twice before noon"
C = "My brother forgot my birthday again and did not even call"
D = "I lost my keys on the way home and waited outside for an hour"


def test_rates_by_hand():
    texts = [A, B, A.upper(), C, A + " today", " ".join(B.split()[::-1]), A, D]
    emotions = ["joy", "joy", "joy", "sadness", "joy", "joy", "sadness", "sadness"]
    r = duplicate_rates(texts, emotions, ["joy", "sadness", "fear"])
    # joy: A, B, A (exact copy of A), A + today (near copy of A), B reversed (same words, other 5-grams): 1 and 2 of 5
    assert r["per_emotion"]["joy"] == {"n": 5, "exact_dup_rate": 0.2, "near_dup_rate": 0.4}
    # sadness: C, A, D: A's copies are joy's, another scope
    assert r["per_emotion"]["sadness"] == {"n": 3, "exact_dup_rate": 0.0, "near_dup_rate": 0.0}
    assert r["per_emotion"]["fear"] == {"n": 0, "exact_dup_rate": None, "near_dup_rate": None}
    # all texts: A.upper() and sadness's A exact; A + today near too: 2 and 3 of 8
    assert r["overall"] == {"n": 8, "exact_dup_rate": 0.25, "near_dup_rate": 0.375}
    assert "0.7" in r["rule"]


def test_a_group_of_copies_counts_all_but_its_first():
    r = duplicate_rates([A] * 4, ["joy"] * 4, ["joy"])
    assert r["per_emotion"]["joy"]["exact_dup_rate"] == r["overall"]["near_dup_rate"] == 0.75


def test_copies_of_gold_train_texts_by_hand():
    train = [A, B, "Nothing much happened at work today"]
    synthetic = [A.lower(), C, B + " again", D]
    test = [C, D, " ".join(A.split()), "A totally new sentence about the weather in spring"]
    g = gold_copies(synthetic, train, test)
    assert g == {"n_synthetic": 4, "n_real": 4, "synthetic_exact_dup_of_train": 0.25,
                 "synthetic_near_dup_of_train": 0.5, "real_exact_dup_of_train": 0.25, "real_near_dup_of_train": 0.25}


def test_report_carries_the_rates_in_table_iv_and_report_json(tmp_path, shared_data):
    """Three emotions of six texts (CARER val lines), two of them copies: report.json's rates and Table IV's cells
    are the hand-counted ones."""
    lines = (shared_data / "carer_emotion" / "val.txt").read_text(encoding="utf-8").splitlines()
    by = {}
    for line in lines:
        text, _, label = line.rpartition(";")
        if label in ("joy", "sadness", "anger") and len(by.setdefault(label, [])) < 6:
            by[label].append(text)
    by["joy"][5] = by["joy"][0].upper()  # an exact copy within joy
    by["anger"][5] = by["joy"][1] + " today"  # a near copy of a joy text: in no emotion's rate, in the overall one
    data = tmp_path / "d.jsonl"
    data.write_bytes(b"".join(orjson.dumps({"text": t, "emotion": e}) + b"\n" for e, ts in by.items() for t in ts))
    assert report.main([str(data), "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]) == 0
    r = orjson.loads((tmp_path / "out" / "report.json").read_bytes())["duplicates"]
    assert r["per_emotion"]["joy"] == {"n": 6, "exact_dup_rate": round(1 / 6, 4), "near_dup_rate": round(1 / 6, 4)}
    assert r["per_emotion"]["anger"] == {"n": 6, "exact_dup_rate": 0.0, "near_dup_rate": 0.0}
    assert r["overall"] == {"n": 18, "exact_dup_rate": round(1 / 18, 4), "near_dup_rate": round(2 / 18, 4)}
    assert "gold" not in r
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "| Emotion | MCD | CE | CD | Exact dup | Near dup |" in md
    assert "| 16.7% | 16.7% |" in md and "| 5.6% | 11.1% |" in md and "Copies of gold" not in md
