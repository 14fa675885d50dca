"""Markdown tables for every report."""


def table(header: list[str], rows: list[list[str]], *, compact: bool = False) -> list[str]:
    """The lines of a markdown table: header, separator, one line per row. `compact`: the `|---|---|` separator
    and `| |` empty header cells that the `model.priors` reports have always printed."""
    def line(cells) -> str:
        return "| " + " | ".join(cells) + " |"

    if compact:
        head = "|" + "|".join(f" {cell} " if cell else " " for cell in header) + "|"
        return [head, "|---" * len(header) + "|", *map(line, rows)]
    return [line(header), line(["---"] * len(header)), *map(line, rows)]
