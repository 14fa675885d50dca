"""The MELD CSV format, read and written in one place: a benchmark's utterances, one row per turn, in MELD's
columns (Utterance, Speaker, Emotion, Dialogue_ID, Utterance_ID) or any others named, read from any file
`common.tables` reads; and the label set of each known benchmark."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from common.errors import UsageError
from common.tables import ReadOptions, header_hint, read_file
from model.emotions import PRESETS

BENCHMARKS = ("meld", "emorynlp", "iemocap6")
CSV_COLUMNS = ("Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID")
COLUMN_OPTIONS = ("text-col", "speaker-col", "label-col", "dialogue-col", "turn-col")  # CSV_COLUMNS' order
COLUMN_WHAT = ("utterance", "speaker", "emotion", "dialogue id (a,b,c: several columns make one id)", "turn order")
SPLIT_FILE = "{split}_sent_emo.csv"
SPEAKER_NAMES = "ABCD"


def benchmark_labels(benchmark: str) -> tuple[str, ...]:
    if benchmark not in BENCHMARKS:
        raise UsageError(f"unknown benchmark {benchmark!r} (known: {', '.join(BENCHMARKS)})")
    return tuple(PRESETS[benchmark].labels)


def read_dialogues(path: str | Path, labels: tuple[str, ...], columns: tuple[str, ...] = CSV_COLUMNS,
                   options: ReadOptions = ReadOptions()) -> list[dict]:
    """Dialogues of a file `common.tables` reads (a CSV with MELD's columns: Utterance, Speaker, Emotion,
    Dialogue_ID, Utterance_ID; others are ignored), in order of first appearance, turns sorted by Utterance_ID:
    [{"id": dialogue id (str), "turns": [{"speaker", "emotion", "text"}]}]. `columns` names those five columns in
    that order for another corpus (by number for a file without a header); its dialogue id may be several columns
    joined by commas (EmoryNLP's `Season,Episode,Scene_ID`). Emotions are lower-cased and must be in `labels`; any
    missing field or unknown label is a UsageError naming the row."""
    path = Path(path)
    table = read_file(path, options)
    utterance, speaker, emotion_col, dialogue, turn_col = columns
    needed = [utterance, speaker, emotion_col, *dialogue.split(","), turn_col]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise UsageError(f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(needed)}; "
                         f"columns: {', '.join(table.columns)}){header_hint(table)}")
    allowed = set(labels)
    dialogues: dict[str, list[tuple[int, dict]]] = {}
    for n in range(table.rows):
        row = {c: "" if table.columns[c][n] is None else str(table.columns[c][n]) for c in needed}
        empty = [c for c in needed if not row[c].strip()]
        if empty:
            raise UsageError(f"{path} row {n + 1}: empty field(s) {', '.join(empty)}")
        emotion = row[emotion_col].strip().lower()
        if emotion not in allowed:
            raise UsageError(f"{path} row {n + 1}: emotion {row[emotion_col]!r} is not in the label set "
                             f"({', '.join(labels)})")
        try:
            order = int(row[turn_col])
        except ValueError:
            raise UsageError(f"{path} row {n + 1}: {turn_col} {row[turn_col]!r} is not a number") from None
        turn = {"speaker": row[speaker].strip(), "emotion": emotion, "text": row[utterance]}
        key = "/".join(row[c].strip() for c in dialogue.split(","))
        dialogues.setdefault(key, []).append((order, turn))
    if not dialogues:
        raise UsageError(f"{path}: no utterances")
    return [{"id": d, "turns": [t for _, t in sorted(turns, key=lambda p: p[0])]} for d, turns in dialogues.items()]


def split_file(data: str | Path, split: str) -> Path:
    """The file of a split: `data` itself when it is a file, else the split's file in the folder `data`
    (`train_sent_emo.csv`, MELD's names)."""
    data = Path(data)
    if data.is_file():
        return data
    if not data.is_dir():
        raise UsageError(f"data {data} does not exist")
    return data / SPLIT_FILE.format(split=split)


def read_split(directory: str | Path, split: str, labels: tuple[str, ...], columns: tuple[str, ...] = CSV_COLUMNS,
               options: ReadOptions = ReadOptions()) -> list[dict]:
    return read_dialogues(split_file(directory, split), labels, columns, options)


def add_column_options(p) -> None:
    """--text-col ... --turn-col: the five columns of `read_dialogues`, MELD's by default."""
    for option, column, what in zip(COLUMN_OPTIONS, CSV_COLUMNS, COLUMN_WHAT):
        p.add_argument(f"--{option}", default=column, help=f"the {what} column, by name or, with --no-header, by "
                       f"number (default {column})")


def columns(args) -> dict[str, str]:
    """{column option: column name}, in CSV_COLUMNS' order."""
    return {option: getattr(args, option.replace("-", "_")) for option in COLUMN_OPTIONS}


def speaker_name(index: int) -> str:
    return f"Speaker {SPEAKER_NAMES[index]}"


def meld_rows(dialogue: dict) -> list[dict]:
    """A finished dialogue as rows in MELD's CSV columns."""
    return [{"Utterance": t["text"], "Speaker": speaker_name(t["speaker"]), "Emotion": t["emotion"],
             "Dialogue_ID": dialogue["id"], "Utterance_ID": i} for i, t in enumerate(dialogue["turns"])]


def meld_csv(dialogues: list[dict]) -> bytes:
    """Dialogues in id order as a MELD-style CSV, so existing ERC code reads it unchanged."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for d in sorted(dialogues, key=lambda d: d["id"]):
        writer.writerows(meld_rows(d))
    return text.getvalue().encode()
