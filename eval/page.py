"""One self-contained HTML page (eval.view's, and eval.report's report.html): inline CSS and JavaScript, figures
as data: URIs, a Content-Security-Policy that allows no network at all, and a browsable, filterable table of the
rows (eval.browse) paged by its script (eval/assets/page.js), so that 20,000 rows stay responsive. The rows travel
as JSON inside a `<script type="application/json">` with `<`, `>` and `&` escaped, and the script sets every cell
with textContent: no text of the data is ever parsed as HTML."""
from __future__ import annotations

import base64
from pathlib import Path

import jinja2
import orjson
from markupsafe import Markup

from common.files import write_text
from eval.browse import Browse

ASSETS = Path(__file__).parent / "assets"
ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(value) -> str:
    """JSON that cannot end the `<script>` element holding it (nor open a comment or a tag)."""
    text = orjson.dumps(value).decode()
    for char, escaped in ESCAPES.items():
        text = text.replace(char, escaped)
    return text


def png_uri(path: Path) -> str | None:
    """A PNG file as a data: URI; None when there is no such file."""
    return f"data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}" if path.is_file() else None


def render(title: str, rows: Browse, report_html: str = "") -> str:
    template = jinja2.Environment(autoescape=True).from_string((ASSETS / "page.html").read_text(encoding="utf-8"))
    return template.render(
        title=title, report=Markup(report_html), source=rows.source, count=len(rows.rows), columns=rows.columns,
        facets=[{"index": i, "name": rows.columns[i]} for i in rows.facets],
        rows=Markup(script_json({"rows": rows.rows, "facets": rows.facets, "small": rows.small})),
        css=Markup((ASSETS / "page.css").read_text(encoding="utf-8")),
        js=Markup((ASSETS / "page.js").read_text(encoding="utf-8")))


def write_page(path: str | Path, title: str, rows: Browse, report_html: str = "") -> None:
    """The page, written atomically."""
    write_text(path, render(title, rows, report_html))
