"""`python -m eval.judge DATA.jsonl --out DIR`: the paper's LLM judge of human-likeness (IV.C, Fig. 4).

Every text is scored by an LLM on a 5-point scale for four criteria (Emotion Match, Grammaticality, Lexical
Diversity and Appropriateness, Structure & Logic), with structured output. Requests go through the engine's
`Client` (limits, retries, the request cache at DIR/judge.cache.sqlite, so a rerun sends nothing twice). An
unreadable answer is asked again and then counts as a failure, never as a score. Writes DIR/judge.json (mean and
standard deviation per criterion, overall and per emotion, and every text's scores) and DIR/judge.png (the score
distribution per criterion). Exit code 1 when some texts could not be judged.
"""
from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from eval.data import DATA_HELP, read_labelled  # noqa: E402
from llm.engine.answers import parse_scores  # noqa: E402
from llm.engine.ask import ask_parsed  # noqa: E402
from llm.engine.messages import SCALE, score_schema  # noqa: E402
from llm.engine.promptset import DEFAULT as DEFAULT_PROMPTS, PromptSet, shipped  # noqa: E402
from llm.api.config import GROUPS, OUTPUT, WHAT, RunConfig  # noqa: E402
from llm.api.wiring import choose_prompts  # noqa: E402
from llm.engine.settings import SlotSettings  # noqa: E402
from llm.transport.options import ClientOptions  # noqa: E402
from model.emotions import PRESETS, EmotionSet, load_emotions  # noqa: E402
from common.fields import add_flags, given  # noqa: E402
from llm.engine.slots import run_slots  # noqa: E402
from llm.transport.protocols import ChatClient  # noqa: E402
from llm.transport.factory import connect  # noqa: E402
from common.cli import Parser, first_paragraph, group, run  # noqa: E402
from common.errors import UsageError  # noqa: E402
from common.files import fresh_output_dir, write_json, write_png  # noqa: E402
from common.markdown import table  # noqa: E402

CRITERIA = {  # key: (the paper's name, what the judge is told it means)
    "emotion_match": ("Emotion Match", "whether the text accurately conveys the designated emotion"),
    "grammaticality": ("Grammaticality", "whether the sentence structure is grammatically natural, including "
                       "word order and punctuation"),
    "lexical_diversity": ("Lexical Diversity and Appropriateness", "whether the vocabulary is diverse and "
                          "aligned with the emotional context"),
    "structure_logic": ("Structure & Logic", "whether the text is logically structured and conceptually "
                        "consistent"),
}
SCHEMA = score_schema(list(CRITERIA))
FIGURE = "judge.png"


def judge_messages(prompts: PromptSet, text: str, emotion: str, definition: str | None = None) -> list[dict]:
    """The judge's request in the set's `judge` template (fields: llm/prompts/README.md)."""
    criteria = [{"key": key, "name": name, "meaning": meaning} for key, (name, meaning) in CRITERIA.items()]
    return prompts.render("judge", text=text, emotion=emotion, definition=definition or emotion, criteria=criteria)


async def judge_texts(records: Sequence[dict], client: ChatClient, *, tries: int = 3, max_tokens: int = 128,
                      prompts: PromptSet | None = None, emotions: EmotionSet | None = None) -> list[dict | None]:
    """Each record's ({"text", "emotion"}) scores {criterion: 1-5}, in order; None where no answer was readable
    in `tries` requests. The records are slots of the engine's slot runner (twice the client's concurrency in
    flight); the client's limiter decides what goes out."""
    usage = Counter()
    wording = SlotSettings(prompts=prompts or shipped(DEFAULT_PROMPTS), emotions=emotions)

    def parse(content: str) -> dict | None:
        return parse_scores(content, CRITERIA, SCALE)

    async def judge(slot: dict) -> tuple[int, dict | None]:
        emotion = slot["emotion"]
        messages = judge_messages(wording.prompts, slot["text"], wording.name(emotion), wording.definition(emotion))
        return slot["id"], await ask_parsed(client, messages, SCHEMA, parse, usage, tries=tries, max_tokens=max_tokens)

    scores: list[dict | None] = [None] * len(records)
    slots = ({"id": i, "text": r["text"], "emotion": r["emotion"]} for i, r in enumerate(records))
    async for i, judged in run_slots(slots, judge, client):
        scores[i] = judged
    return scores


def _stats(scores: list[dict]) -> dict:
    out = {}
    for key in CRITERIA:
        values = np.array([s[key] for s in scores], dtype=np.float64)
        out[key] = {"mean": round(float(values.mean()), 4) if len(values) else None,
                    "std": round(float(values.std()), 4) if len(values) else None}
    return out


def summarize(emotions: Sequence[str], scores: Sequence[dict | None]) -> dict:
    """Mean and (population) standard deviation per criterion over the judged texts, overall and per emotion,
    the count of each score per criterion, and how many texts could not be judged."""
    judged = [s for s in scores if s is not None]
    by_emotion: dict[str, list[dict]] = {e: [] for e in dict.fromkeys(emotions)}
    for e, s in zip(emotions, scores):
        if s is not None:
            by_emotion[e].append(s)
    return {
        "n": len(scores),
        "judged": len(judged),
        "failed": len(scores) - len(judged),
        "criteria": {key: {"name": CRITERIA[key][0], **stats,
                           "counts": {str(v): sum(s[key] == v for s in judged) for v in SCALE}}
                     for key, stats in _stats(judged).items()},
        "per_emotion": {e: {"n": len(ss), **_stats(ss)} for e, ss in by_emotion.items()},
    }


def score_figure(summary: dict):
    """Fig. 4: per criterion, the share of judged texts given each score, as grouped bars; the legend below the
    axes, where it covers no bar."""
    fig, ax = plt.subplots(figsize=(8, 5))
    width = 0.8 / len(CRITERIA)
    total = max(summary["judged"], 1)
    for i, (key, c) in enumerate(summary["criteria"].items()):
        shares = [c["counts"][str(v)] / total for v in SCALE]
        mean = "n/a" if c["mean"] is None else f"{c['mean']:.2f}"
        ax.bar(np.array(SCALE) + (i - (len(CRITERIA) - 1) / 2) * width, shares, width, label=f"{c['name']} "
               f"(mean {mean})")
    ax.set_xticks(list(SCALE))
    ax.set_xlabel("score")
    ax.set_ylabel("share of texts")
    ax.set_ylim(0, 1)
    ax.set_title(f"LLM judge of human-likeness ({summary['judged']} texts)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    return fig


def score_png(path: Path, summary: dict) -> None:
    write_png(path, score_figure(summary))


def add_judge_options(p) -> None:
    """The judge's LLM connection and wording (also what `eval.report --judge` takes): the run config's flags for
    them (llm.api.config), and the judge's own cache."""
    titles = {**GROUPS, WHAT: "judged emotions"}
    add_flags(p, [RunConfig], titles, only=("endpoints", "model", "prompts", "language", "emotions"))
    add_flags(p, [ClientOptions], titles)
    group(p, GROUPS[OUTPUT]).add_argument("--judge-cache", help="request cache (default: OUT/judge.cache.sqlite)")


def _emotion_set(spec: str | None, labels: Sequence[str]) -> EmotionSet | None:
    """--emotions, else the first preset holding every label of the data (their definitions go in the prompts),
    else none (each label its own definition)."""
    if spec is not None:
        return load_emotions(spec)
    return next((e for e in PRESETS.values() if all(e.get(label) for label in set(labels))), None)


def run_judge(data_path: Path, out_dir: Path, args) -> dict:
    """Judge every text of a labelled file (eval.data.read_labelled); write out_dir/judge.json and judge.png;
    return the summary (with the per-text scores under "scores")."""
    endpoints, model = tuple(getattr(args, "endpoints", ())), getattr(args, "model", None)
    if (not endpoints) != (model is None):
        raise UsageError("--base-url and --model go together (without both, the embedded SmolLM2 server is used)")
    options = ClientOptions(**given(args, ClientOptions))
    prompts = choose_prompts(getattr(args, "prompts", None), getattr(args, "language", None))
    data = read_labelled(data_path).data
    emotions = _emotion_set(getattr(args, "emotions", None), data.emotions)
    records = [{"text": t, "emotion": e} for t, e in zip(data.texts, data.emotions)]
    if records:  # a template that fails on a record fails here, before any request
        judge_messages(prompts, records[0]["text"], records[0]["emotion"])

    async def judge() -> tuple[list, str]:
        cache = args.judge_cache or out_dir / "judge.cache.sqlite"
        async with connect(endpoints, model, options, cache, prompts.cache_tag) as client:
            return await judge_texts(records, client, prompts=prompts, emotions=emotions), client.model

    with fresh_output_dir(out_dir):  # made before the cache in it is checked; gone again if nothing was asked
        scores, model = asyncio.run(judge())
    summary = {"input": str(data_path), "model": model, "prompt_set": prompts.provenance(),
               **summarize(data.emotions, scores), "figure": FIGURE, "scores": scores}
    score_png(out_dir / FIGURE, summary)
    write_json(out_dir / "judge.json", summary)
    return summary


def report_entry(summary: dict) -> dict:
    """What `eval.report --judge` keeps of a summary: each criterion's mean under its key, their standard
    deviations, and the counts."""
    return {**{key: c["mean"] for key, c in summary["criteria"].items()},
            "std": {key: c["std"] for key, c in summary["criteria"].items()},
            **{k: summary[k] for k in ("model", "n", "judged", "failed", "figure")}}


def report_section(report: dict) -> list[str]:
    """The report's markdown for `report["judge"]` (a `report_entry`): mean and std per criterion, the figure."""
    j = report["judge"]
    rows = [[name, f"{j[key]:.2f}", f"{j['std'][key]:.2f}"] if j[key] is not None else [name, "n/a", "n/a"]
            for key, (name, _) in CRITERIA.items()]
    failed = f" ({j['failed']} got no readable answer)" if j["failed"] else ""
    return ["## Human-likeness (LLM judge)", "",
            f"{j['model']} scored {j['judged']} of {j['n']} texts on a 1-5 scale{failed}.", "",
            *table(["Criterion", "Mean", "Std"], rows), "", f"![LLM judge scores]({j['figure']})"]


def parser() -> Parser:
    p = Parser(prog="python -m eval.judge", description=first_paragraph(__doc__))
    p.add_argument("data", type=Path, help=DATA_HELP)
    group(p, GROUPS[OUTPUT]).add_argument("--out", type=Path, required=True, help="output directory")
    add_judge_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    summary = run_judge(args.data, args.out, args)
    means = ", ".join(f"{k} {c['mean']}" for k, c in summary["criteria"].items())
    print(f"judged {summary['judged']} of {summary['n']} texts ({means}); wrote {args.out / 'judge.json'} and "
          f"{args.out / FIGURE}", file=sys.stderr)
    if summary["failed"]:
        print(f"error: {summary['failed']} texts got no readable scores (null in judge.json)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
