"""Markdown tables for the reports (`eval.report`, `eval.erc`, `model.dialogue`)."""


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a markdown table: header, separator, one line per row."""
    def line(cells) -> str:
        return "| " + " | ".join(cells) + " |"

    return [line(header), line(["---"] * len(header)), *map(line, rows)]
