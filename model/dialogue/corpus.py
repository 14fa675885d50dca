"""The MELD CSV format, read and written in one place: a benchmark's utterances, one row per turn, in MELD's
columns (Utterance, Speaker, Emotion, Dialogue_ID, Utterance_ID), and the label set of each known benchmark."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from common.errors import UsageError
from model.emotions import PRESETS

BENCHMARKS = ("meld", "emorynlp", "iemocap6")
CSV_COLUMNS = ("Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID")
SPLIT_FILE = "{split}_sent_emo.csv"
SPEAKER_NAMES = "ABCD"


def benchmark_labels(benchmark: str) -> tuple[str, ...]:
    if benchmark not in BENCHMARKS:
        raise UsageError(f"unknown benchmark {benchmark!r} (known: {', '.join(BENCHMARKS)})")
    return tuple(PRESETS[benchmark].labels)


def read_dialogues(path: str | Path, labels: tuple[str, ...], columns: tuple[str, ...] = CSV_COLUMNS) -> list[dict]:
    """Dialogues of a CSV with MELD's columns (Utterance, Speaker, Emotion, Dialogue_ID, Utterance_ID; others are
    ignored), in order of first appearance, turns sorted by Utterance_ID:
    [{"id": dialogue id (str), "turns": [{"speaker", "emotion", "text"}]}]. `columns` names those five columns in
    that order for another corpus; its dialogue id may be several columns joined by commas (EmoryNLP's
    `Season,Episode,Scene_ID`). Emotions are lower-cased and must be in `labels`; any missing field or unknown
    label is a UsageError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    utterance, speaker, emotion_col, dialogue, turn_col = columns
    needed = [utterance, speaker, emotion_col, *dialogue.split(","), turn_col]
    allowed = set(labels)
    dialogues: dict[str, list[tuple[int, dict]]] = {}
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in needed if c not in (reader.fieldnames or ())]
            if missing:
                raise UsageError(f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(needed)})")
            for row in reader:
                line = reader.line_num
                empty = [c for c in needed if not (row.get(c) or "").strip()]
                if empty:
                    raise UsageError(f"{path}:{line}: empty field(s) {', '.join(empty)}")
                emotion = row[emotion_col].strip().lower()
                if emotion not in allowed:
                    raise UsageError(f"{path}:{line}: emotion {row[emotion_col]!r} is not in the label set "
                                     f"({', '.join(labels)})")
                try:
                    order = int(row[turn_col])
                except ValueError:
                    raise UsageError(f"{path}:{line}: {turn_col} {row[turn_col]!r} is not a number") from None
                turn = {"speaker": row[speaker].strip(), "emotion": emotion, "text": row[utterance]}
                key = "/".join(row[c].strip() for c in dialogue.split(","))
                dialogues.setdefault(key, []).append((order, turn))
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not dialogues:
        raise UsageError(f"{path}: no utterances")
    return [{"id": d, "turns": [t for _, t in sorted(turns, key=lambda p: p[0])]} for d, turns in dialogues.items()]


def read_split(directory: str | Path, split: str, labels: tuple[str, ...],
               columns: tuple[str, ...] = CSV_COLUMNS) -> list[dict]:
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"data directory {directory} does not exist")
    return read_dialogues(directory / SPLIT_FILE.format(split=split), labels, columns)


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
