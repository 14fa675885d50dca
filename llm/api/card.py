"""The dataset card of a folder of outputs: README.md beside them, in the Hugging Face dataset-card form. Its YAML
header (task categories, languages, size category, a license left for the user to fill in) has one `configs` entry
per output, named after the output's file name without its extension and pointing at the output's JSONL form (the
output, or its journal: a folder's configs must share one data format), the first written the default
(`datasets.load_dataset(DIR, NAME)` loads one, `load_dataset(DIR)` the default). Its body has one section per
output, with what the data came from: the profile and every cited source, the domain, the emotions and their
definitions (and their names in the texts' language where the prompts named them otherwise, with a line on the
records' `shown`), the method, the model and the kind of endpoint (its host only: never a key, a user or a password),
the seed, the prompt set, counts per emotion, acceptance per validation stage, tokens, the duplicates regenerated
(llm.api.dedup), the batches and the cost spent, and the plan beside the actual counts when the run was priced. A run
replaces its own section and keeps the others.

A README.md that is not a card of ours (its first line after the header is not MARKER) is never overwritten."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from common.files import write_text
from common.schema import SHOWN

from ..transport.endpoint import Endpoint
from .dedup import duplicates_section

MARKER = "<!-- written by python -m llm.generate: a dataset card -->"
_OPEN = "<!-- output: "  # opens an output's section, its metadata as JSON
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))


def size_category(n: int) -> str:
    return next((name for limit, name in _SIZES if n < limit), "n>100M")


def endpoint_kind(endpoints: tuple[Endpoint, ...]) -> str:
    """Where the texts came from, without credentials: the hosts (and ports) of the endpoints, or the embedded
    server."""
    if not endpoints:
        return "the embedded SmolLM2 server (llm/transport/embedded/)"
    hosts = [e.host for e in endpoints]
    return f"OpenAI-compatible endpoint{'s' if len(hosts) > 1 else ''} at {', '.join(hosts)}"


def section(config, summary: dict, results: list[dict], profile, settings, jsonl: str) -> str:
    """This output's part of the card (see the module docstring); `settings` are the run's engine settings (its
    emotion set and language), `jsonl` the name of the output's JSONL form (the file itself, or its journal)."""
    data_file = Path(config.out).name
    language = settings.language
    definitions = {e.label: e.defined(language) for e in settings.emotions.emotions}
    names = {e: settings.name(e) for e in definitions}
    named = any(name != e for e, name in names.items())  # a "shown as" column where the prompts named them so
    counts = Counter(e for r in results for e in ([t["emotion"] for t in r["turns"]] if "turns" in r
                                                   else [r.get("emotion", "?")]))
    meta = {"file": data_file, "jsonl": jsonl, "language": language, "records": len(results)}
    lines = [f"{_OPEN}{json.dumps(meta, ensure_ascii=False)} -->", f"## {data_file}", "",
             f"Synthetic emotion-labelled {'dialogues' if config.mode == 'dialogue' else 'texts'} from probabilistic "
             f"personas (`python -m llm.generate`), {len(results)} records in `{data_file}` (id order).", "",
             "### How it was made", "",
             f"- Profile: `{profile.name}`: {profile.description}",
             f"- Domain: `{profile.domain.name}`: {profile.domain.description}" if profile.domain else "- Domain: none",
             f"- Method: `{config.method}`", f"- Model: `{config.model or 'SmolLM2 (embedded)'}` on "
             f"{endpoint_kind(config.endpoints)}", f"- Seed: {config.seed}",
             f"- Prompt set: {summary.get('prompt_set', {}).get('name', '?')} "
             f"(hash `{summary.get('prompt_set', {}).get('hash', '?')}`), language `{language}`",
             "- Config: the resolved run is in `" + data_file + ".config.toml` (`python -m llm.generate --config ...`)"]
    if any(SHOWN in r for r in results):
        lines.append(f"- Shown labels: the prompts showed the emotions and the persona values in `{language}`; the "
                     f"records keep the canonical ones, with what the prompts showed under `{SHOWN}`")
    lines += ["", "### Sources of the persona attributes", ""]
    lines += [f"- `{name}`: {a.source or 'no source given'}" for name, a in profile.attributes.items()]
    lines += ["", "### Emotions", "", "| emotion | records | definition |" + (" shown as |" if named else ""),
              "|---|---|---|" + ("---|" if named else "")]
    lines += [f"| {e} | {counts.get(e, 0)} | {definitions.get(e, '')} |" + (f" {names.get(e, e)} |" if named else "")
              for e in dict.fromkeys([*definitions, *counts])]
    lines += ["", "### Acceptance per validation stage", "", "| stage | acceptance rate |", "|---|---|"]
    lines += [f"| {stage} | {v['acceptance_rate']} |" for stage, v in summary.get("validation", {}).items()]
    output = summary.get("output", {})
    lines += ["", "### Tokens", "", "| | this run | whole output |", "|---|---|---|",
              f"| requests | {summary.get('requests', 0)} | |",
              f"| prompt tokens | {summary.get('prompt_tokens', 0)} | {output.get('prompt_tokens', '')} |",
              f"| completion tokens | {summary.get('completion_tokens', 0)} | {output.get('completion_tokens', '')} |",
              f"| persona redraws | {summary.get('persona_redraws', 0)} | |"]
    if "output_spent" in summary:
        lines += [f"| cost spent | {summary['cost']} | {summary['output_spent']} |"]
    lines += _batches(config, summary.get("batch"))
    lines += duplicates_section(summary, results)
    if "plan" in summary:
        plan = summary["plan"]
        lines += ["", "### Plan and actual", "", "| | plan | actual |", "|---|---|---|",
                  f"| requests | {plan['requests']} | {summary['requests']} |",
                  f"| prompt tokens | {plan['prompt_tokens']} | {summary['prompt_tokens']} |",
                  f"| completion tokens | {plan['completion_tokens_at_most']} (at most) | "
                  f"{summary['completion_tokens']} |",
                  f"| cost | {plan.get('cost_at_most')} (at most) | {summary['cost']} |"]
    return "\n".join(lines) + "\n"


def _batches(config, batch: dict | None) -> list[str]:
    """The card's lines on batch mode: how the requests were sent, and every batch of the output."""
    if batch is None:
        return []
    how = (f"batch files in `{Path(config.batch_dir).name}/`, answered offline" if config.batch_dir is not None
           else "the endpoint's OpenAI Batch API")
    return ["", "### Batches", "", f"Sent in rounds through {how}, at {config.batch_discount:g} times the prices; "
            f"this run: {batch['rounds']} rounds. The output's batches:", "",
            *[f"- `{label}`" for label in batch["output_batches"]]]


def _sections(text: str) -> list[tuple[dict, str]]:
    """The (metadata, text) of every output's section of a card of ours, in order."""
    return [(json.loads(part.partition(" -->\n")[0]), _OPEN + part.rstrip("\n") + "\n")
            for part in text.split(_OPEN)[1:]]


def _names(metas: list[dict]) -> list[str]:
    """Each output's config name: its file name without the extension, or the whole name where two outputs share
    a stem."""
    stems = [Path(m["file"]).stem for m in metas]
    return [stem if stems.count(stem) == 1 else m["file"].replace(".", "_") for stem, m in zip(stems, metas)]


def _header(metas: list[dict]) -> list[str]:
    languages = list(dict.fromkeys(m["language"] for m in metas))
    lines = ["---", "# license: fill in the license of your data (e.g. cc-by-4.0) and uncomment", "language:",
             *[f"- {language}" for language in languages], "task_categories:", "- text-classification",
             "task_ids:", "- sentiment-classification", "size_categories:",
             f"- {size_category(sum(m['records'] for m in metas))}", "tags:", "- synthetic", "- emotion", "configs:"]
    for i, (name, m) in enumerate(zip(_names(metas), metas)):
        lines += [f"- config_name: {name}", "  data_files:", "  - split: train", f"    path: {m['jsonl']}"]
        lines += ["  default: true"] if i == 0 else []
    return [*lines, "---"]


def write_card(text: str, out: str | Path) -> Path | None:
    """Put this output's section (`section`) into README.md beside `out`: in place of its earlier one, else after
    the others, the header rebuilt from them all; unless a README.md there is someone else's (then None)."""
    path = Path(out).parent / "README.md"
    old = path.read_text(errors="replace") if path.exists() else None
    if old is not None and MARKER not in old.split("---", 2)[-1][:200]:
        return None
    sections, mine = _sections(old) if old else [], _sections(text)[0]
    files = [meta["file"] for meta, _ in sections]
    if mine[0]["file"] in files:
        sections[files.index(mine[0]["file"])] = mine
    else:
        sections.append(mine)
    metas = [meta for meta, _ in sections]
    body = [MARKER, "", "# Synthetic emotion data", "",
            "Written by `python -m llm.generate`: one section, and one `configs` entry, per output in this folder. "
            "`datasets.load_dataset(DIR, NAME)` loads an output (NAME: its file name without the extension) from its "
            "JSONL form (the output itself, or the journal beside a CSV or parquet output: one data format for the "
            f"whole folder); `load_dataset(DIR)` loads `{metas[0]['file']}`.", ""]
    write_text(path, "\n".join([*_header(metas), *body]) + "\n" + "\n".join(text for _, text in sections))
    return path
