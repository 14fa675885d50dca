"""eval.report end to end on small slices of CARER (real embeddings, cached for the session), and its errors."""
import subprocess
import sys

import orjson
import pytest

from eval import report
from tests.support.paths import REPO

PNG = b"\x89PNG\r\n\x1a\n"


def lines(path, n, step=1):
    return path.read_text(encoding="utf-8").splitlines()[: n * step : step]


def jsonl(path, pairs):
    path.write_bytes(b"".join(orjson.dumps({"text": t, "emotion": e, "extra": 1}) + b"\n" for t, e in pairs))
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory, shared_data):
    """180 'synthetic' texts (CARER val), a gold dir of 180 train / 90 test lines, one shared embedding cache."""
    root = tmp_path_factory.mktemp("report")
    carer = shared_data / "carer_emotion"
    synthetic = jsonl(root / "synthetic.jsonl", (line.rpartition(";")[::2] for line in lines(carer / "val.txt", 180)))
    gold = root / "gold"
    gold.mkdir()
    (gold / "train.txt").write_text("\n".join(lines(carer / "train.txt", 180, step=7)) + "\n", encoding="utf-8")
    (gold / "test.txt").write_text("\n".join(lines(carer / "test.txt", 90, step=3)) + "\n", encoding="utf-8")
    return root, synthetic, gold


def run(root, *args):
    return report.main([*map(str, args), "--cache-dir", str(root / "cache")])


@pytest.fixture(scope="module")
def full(small):
    root, synthetic, gold = small
    out = root / "out"
    assert run(root, synthetic, "--gold", gold, "--out", out) == 0
    return out, orjson.loads((out / "report.json").read_bytes())


def test_report_json_has_every_section(full):
    _, r = full
    emotions = set(r["input"]["emotions"])
    assert emotions <= {"sadness", "joy", "love", "anger", "fear", "surprise"} and len(emotions) >= 5
    for e in emotions:
        assert set(r["diversity"][e]) == {"mcd", "ce", "cd"}
        assert 0 < r["diversity"][e]["mcd"] < 1.5 and 0 < r["diversity"][e]["ce"] <= 1.6095
        assert set(r["classification"]["per_class"][e]) == {"precision", "recall", "f1", "support"}
    c = r["classification"]
    assert c["n_train"] == 144 and c["n_test"] == 36 and all(0 <= c[k] <= 1 for k in ("precision", "recall", "f1"))
    assert sum(map(sum, c["confusion"]["matrix"])) == 36
    assert set(r["gold"]) >= {"fid", "prd_f8", "kl", "hc"} and r["gold"]["fid"] > 0 and 0 < r["gold"]["hc"] <= 1
    for key in ("tstr", "gold_trained"):
        assert set(r[key]) >= {"accuracy", "precision", "recall", "f1"} and r[key]["n_test"] == 90
        assert r[key]["accuracy"] > 0.2  # six classes: chance is about 1/6 or the majority share
    assert r["tstr"]["n_train"] == 180 and r["gold_trained"]["n_train"] == 180


def test_report_markdown_and_figures(full):
    out, r = full
    md = (out / "report.md").read_text(encoding="utf-8")
    for title in ("Table IV", "Table V", "Table VI", "Table VII"):
        assert title in md
    assert f"| {r['input']['method']} | {r['gold']['fid']:.4f} |" in md
    for name in r["figures"].values():
        assert (out / name).read_bytes().startswith(PNG)


def test_without_gold_there_are_no_gold_sections(small, full, tmp_path):
    """Six texts of each of the three commonest emotions (already embedded by `full`)."""
    root, synthetic, _ = small
    records = [orjson.loads(line) for line in synthetic.read_bytes().splitlines()]
    common = sorted({r["emotion"] for r in records}, key=lambda e: -sum(r["emotion"] == e for r in records))[:3]
    subset = [(r["text"], r["emotion"]) for e in common for r in [r for r in records if r["emotion"] == e][:6]]
    assert run(root, jsonl(tmp_path / "few.jsonl", subset), "--out", tmp_path) == 0
    r = orjson.loads((tmp_path / "report.json").read_bytes())
    assert "gold" not in r and "tstr" not in r and "diversity" in r
    assert "Table VI" not in (tmp_path / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("content, message", [
    ([], "no records"),
    ([("a", "joy")] * 5, "at least 2 are needed"),
    ([("a", "joy")] * 5 + [("b", "bliss")] * 5, "not in the gold label set"),
])
def test_bad_input_is_one_line_and_exit_2(small, tmp_path, capsys, content, message):
    root, _, gold = small
    data = jsonl(tmp_path / "bad.jsonl", content)
    assert run(root, data, "--gold", gold, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_missing_field_through_python_m(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "hello"}\n', encoding="utf-8")
    p = subprocess.run([sys.executable, "-m", "eval.report", str(data), "--out", str(tmp_path / "o")],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [f"error: {data}: no column named label/emotion/labels (columns: text)"]


def test_one_worker_or_several_give_the_same_report(small, full, tmp_path, monkeypatch):
    """The pieces after the embeddings run side by side (eval.parallel): on one worker or on three, report.json,
    report.md and the figures are the same bytes as the `full` run's (one worker per usable core)."""
    import eval.parallel
    root, synthetic, gold = small
    out, _ = full
    for count in (1, 3):
        monkeypatch.setattr(eval.parallel, "usable_cores", lambda: count)
        assert run(root, synthetic, "--gold", gold, "--out", tmp_path / str(count)) == 0
        for name in ("report.json", "report.md", "tsne.png", "confusion.png"):
            assert (tmp_path / str(count) / name).read_bytes() == (out / name).read_bytes(), (count, name)


def test_reference_rows_one_after_the_other_equal_the_report(small, full):
    """eval.references.reference_rows (sequential) gives the rows the report's parallel pieces gave (BLAS on one
    thread, as in the report's phase: FID's Gram matrices differ in the last bits with the BLAS thread count)."""
    from threadpoolctl import threadpool_limits

    from eval.references import reference_rows
    root, synthetic, gold = small
    _, r = full
    inputs = report.load_inputs(synthetic, gold)
    embed = report.Embedder(root / "cache", progress=False)
    x, x_train, x_test = (embed(texts) for texts in (inputs.mapped.texts, inputs.gold.train.texts,
                                                    inputs.gold.test.texts))
    with threadpool_limits(1, user_api="blas"):
        refs = reference_rows(x, inputs.mapped, x_train, inputs.gold.train, x_test, inputs.gold.test,
                              inputs.gold.labels, {})
    assert orjson.loads(orjson.dumps(refs)) == r["references"]


def test_with_gold_the_copies_of_gold_train_texts_sit_beside_real_vs_real(small, full):
    """Issue 23: report.json's gold copies are those of eval.duplicates on the texts read, and Table VI says them."""
    from eval.duplicates import gold_copies
    root, synthetic, gold = small
    out, r = full
    inputs = report.load_inputs(synthetic, gold)
    assert r["duplicates"]["gold"] == gold_copies(inputs.data.texts, inputs.gold.train.texts, inputs.gold.test.texts)
    assert r["duplicates"]["gold"]["n_real"] == 90 and set(r["duplicates"]["per_emotion"]) == set(r["diversity"])
    md = (out / "report.md").read_text(encoding="utf-8")
    g = r["duplicates"]["gold"]
    assert f"Copies of gold train texts: {g['synthetic_exact_dup_of_train']:.1%} exact" in md
