"""The markdown our reports write (report.md: headings, paragraphs, `- ` lists, pipe tables, images on a line of
their own, `code` and **bold**) as HTML, every text escaped; an image becomes what `image(name)` gives (a data:
URI), or its alt text when that is None."""
from __future__ import annotations

import re
from collections.abc import Callable
from html import escape

IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)$")


def _inline(text: str) -> str:
    html = escape(text)
    html = re.sub(r"`([^`]+)`", r"<code>\1</code>", html)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _table(lines: list[str]) -> str:
    head, body = _cells(lines[0]), [_cells(line) for line in lines[2:]]
    return ("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in body)
            + "</tbody></table>")


def _block(lines: list[str], image: Callable[[str], str | None]) -> str:
    first = lines[0]
    if first.startswith("#"):
        level = min(len(first) - len(first.lstrip("#")), 6)
        return f"<h{level}>{_inline(first.lstrip('#').strip())}</h{level}>"
    if first.startswith("|") and len(lines) > 1 and set(lines[1].replace("|", "").strip()) <= set("-: "):
        return _table(lines)
    if all(line.startswith("- ") for line in lines):
        return "<ul>" + "".join(f"<li>{_inline(line[2:])}</li>" for line in lines) + "</ul>"
    if len(lines) == 1 and (match := IMAGE.match(first.strip())):
        alt, name = match.groups()
        uri = image(name)
        return f'<img alt="{escape(alt)}" src="{escape(uri)}">' if uri else f"<p>[{escape(alt)}: {escape(name)}]</p>"
    return "<p>" + " ".join(_inline(line) for line in lines) + "</p>"


def to_html(markdown: str, image: Callable[[str], str | None]) -> str:
    """HTML of `markdown` (module doc), block by block (blocks are separated by blank lines; a heading is one)."""
    blocks: list[list[str]] = []
    for line in markdown.splitlines():
        if not line.strip():
            blocks.append([])
        elif line.startswith("#"):
            blocks += [[line], []]
        else:
            if not blocks:
                blocks.append([])
            blocks[-1].append(line)
    return "\n".join(_block(b, image) for b in blocks if b)
