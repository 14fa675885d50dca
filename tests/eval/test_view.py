"""eval.view and report.html without a browser: the rows of every kind of output, the page's escaping and
self-containment, the command's files and errors. tests/eval/test_view_browser.py drives the page in Chromium."""
import csv
import re

import orjson
import pytest

from common.cli import run
from common.tables import read_file
from eval.browse import browse, verdicts
from eval.markdown_html import to_html
from eval.page import render, script_json
from eval.view import main
from common.formats import write as write_results

HOSTILE = "</script><script>alert(1)</script><img src=x onerror=alert(2)> & \u2028 <!--"


def results(n: int) -> list[dict]:
    emotions = ["joy", "anger", "fear"]
    return [{"id": i, "seed": 0, "attempt": 0, "profile": "jp", "domain": "sns",
             "stage1": {"age": f"{20 + i % 50}s", "gender": "woman" if i % 2 else "man"},
             "stage2": {"region": ["Tokyo", "Osaka", "Hokkaido"][i // 2 % 3]}, "stage3": {"style": "terse"},
             "emotion": emotions[i % 3], "log_prob": -3.2, "method": "persona",
             "text": HOSTILE if i == 3 else f"text number {i} feeling {emotions[i % 3]}",
             "validation": ({"stage1": {"label": "natural", "reason": "ok"},
                             "stage2": {"label": "rare but plausible", "reason": "hm"}} if i % 4 else
                            {"skipped": {"risk": 0.01}}),
             "prompt": [{"role": "user", "content": "a long prompt"}], "usage": {"prompt_tokens": 3},
             "rejected_draws": []} for i in range(n)]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_llm_generate_results_browse_alike_in_every_format(tmp_path, fmt):
    path = tmp_path / f"r.{fmt}"
    write_results([results(8)], path, fmt)
    rows = browse(read_file(path), path)
    assert rows.columns == ["text", "emotion", "validation", "persona and other fields"]
    assert rows.rows[1] == ["text number 1 feeling anger", "anger", "stage1: natural · stage2: rare but plausible",
                            "age: 21s · gender: woman · region: Tokyo · style: terse"]
    assert rows.rows[0][2] == "skipped: (risk: 0.01)" and rows.rows[3][0] == HOSTILE
    assert rows.facets == [1, 2] and rows.small == [3]
    assert not any("a long prompt" in cell for row in rows.rows for cell in row)  # bookkeeping left out


def test_personas_without_text_and_a_dialogue_csv(tmp_path):
    personas = tmp_path / "personas.jsonl"
    personas.write_bytes(b"".join(orjson.dumps({k: v for k, v in r.items() if k in
                                                ("id", "profile", "stage1", "stage2", "emotion")}) + b"\n"
                                  for r in results(3)))
    rows = browse(read_file(personas), personas)
    assert rows.columns == ["emotion", "persona and other fields"] and rows.facets == [0]
    assert rows.rows[0] == ["joy", "age: 20s · gender: man · region: Tokyo"]
    dialogues = tmp_path / "dialogues.csv"
    with dialogues.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["Sr No.", "Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID",
                                  "Season", "Episode"], [1, "Oh, hi!", "Ross", "joy", 0, 0, 3, 7]])
    rows = browse(read_file(dialogues), dialogues)
    assert rows.columns == ["Utterance", "Emotion", "persona and other fields"]
    assert rows.rows == [["Oh, hi!", "joy", "Sr No.: 1 · Speaker: Ross · Dialogue_ID: 0 · Utterance_ID: 0 · "
                                           "Season: 3 · Episode: 7"]]


def test_verdicts():
    assert verdicts('{"stage1": {"label": "natural"}, "stage3": "implausible"}') == \
        "stage1: natural · stage3: implausible"
    assert verdicts("not json") == "not json" and verdicts(None) == ""


def test_the_page_cannot_be_broken_out_of_and_loads_nothing(tmp_path):
    path = tmp_path / "r.jsonl"
    write_results([results(5)], path, "jsonl")
    page = render("a <b>title</b>", browse(read_file(path), path), to_html("## T\n\n![fig](x.png)", lambda n: None))
    data = page[page.index('<script type="application/json" id="rows">'):]
    data = data[data.index(">") + 1:data.index("</script>")]
    assert "<" not in data and ">" not in data and "&" not in data and "\u2028" not in data
    assert orjson.loads(data)["rows"][3][0] == HOSTILE
    assert page.count("<script") == 2 and "<title>a &lt;b&gt;title&lt;/b&gt;</title>" in page
    assert "default-src 'none'" in page and not re.search(r"(src|href)=\"(https?:)?//", page)
    assert script_json("</script>") == '"\\u003c/script\\u003e"'


def test_markdown_to_html_escapes_and_embeds():
    html = to_html("## Title\n\nA <b> & `x<y>`, **bold**.\n\n- one\n- two\n\n| a | b |\n| --- | --- |\n| 1 | <i> |\n\n"
                   "![t-SNE](tsne.png)\n\n![missing](none.png)", lambda name: "data:image/png;base64,AA==" if
                   name == "tsne.png" else None)
    assert html.startswith("<h2>Title</h2>")
    assert "<p>A &lt;b&gt; &amp; <code>x&lt;y&gt;</code>, <strong>bold</strong>.</p>" in html
    assert "<ul><li>one</li><li>two</li></ul>" in html and "<td>&lt;i&gt;</td>" in html
    assert '<img alt="t-SNE" src="data:image/png;base64,AA==">' in html and "<p>[missing: none.png]</p>" in html


def test_the_command_writes_beside_the_data_and_opens_it(tmp_path, monkeypatch, capsys):
    data = tmp_path / "r.parquet"
    write_results([results(4)], data, "parquet")
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    assert run(main, [str(data), "--open"]) == 0
    page = tmp_path / "r.html"
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>") and opened == [page.resolve().as_uri()]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.parquet"]  # no temp file left
    assert run(main, [str(data), "--out", str(tmp_path / "elsewhere.html")]) == 0 and opened == [opened[0]]


@pytest.mark.parametrize("args, message", [
    (["{tmp}/none.jsonl"], "no such file"),
    (["{tmp}/data.jsonl", "--text-col", "body"], "no column 'body'"),
    (["{tmp}/data.jsonl", "--out", "{tmp}/missing/page.html"], "does not exist"),
])
def test_bad_input_is_one_line_and_nothing_written(tmp_path, capsys, args, message):
    write_results([results(2)], tmp_path / "data.jsonl", "jsonl")
    assert run(main, [a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]


def test_eval_report_writes_report_html_with_its_figures_inside(tmp_path, monkeypatch):
    from eval import report
    from tests.eval.test_report_gold import HashEmbedder

    monkeypatch.setattr(report, "Embedder", HashEmbedder)
    data = tmp_path / "r.jsonl"
    write_results([results(30)], data, "jsonl")
    assert report.main([str(data), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 2 and "tsne.png" not in page.replace('alt="t-SNE"', "")
    assert "<h2>Table IV. Semantic diversity</h2>" in page and md.splitlines()[0] not in page
    assert orjson.loads(page[page.index('id="rows">') + 10:page.index("</script>")])["rows"][3][0] == HOSTILE
