"""The dataset card of a run: README.md beside the output, in the Hugging Face dataset-card form (a YAML header:
task categories, language, size category, a license left for the user to fill in, `configs` pointing at the data
file; `datasets.load_dataset(OUT_DIR)` reads it), and a body with what the data came from: the profile and every
cited source, the domain, the emotions and their definitions, the method, the model and the kind of endpoint (its
host only: never a key, a user or a password), the seed, the prompt set, counts per emotion, acceptance per
validation stage, tokens, duplicates (llm.api.dedup), and the plan beside the actual counts when the run was priced.

A README.md that is not a card of ours (its first line after the header is not MARKER) is never overwritten."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from common.files import write_text

from ..transport.endpoint import Endpoint
from .dedup import duplicates_section

MARKER = "<!-- written by python -m llm.generate: a dataset card -->"
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


def _header(data_file: str, language: str, n: int) -> list[str]:
    return ["---", "# license: fill in the license of your data (e.g. cc-by-4.0) and uncomment", "language:",
            f"- {language}", "task_categories:", "- text-classification", "task_ids:", "- sentiment-classification",
            "size_categories:", f"- {size_category(n)}", "tags:", "- synthetic", "- emotion", "configs:",
            "- config_name: default", "  data_files:", "  - split: train", f"    path: {data_file}", "---"]


def card(config, summary: dict, results: list[dict], profile, settings) -> str:
    """The card's text (see the module docstring); `settings` are the run's engine settings (its emotion set and
    language)."""
    data_file = Path(config.out).name
    language = settings.language
    definitions = {e.label: e.defined(language) for e in settings.emotions.emotions}
    counts = Counter(e for r in results for e in ([t["emotion"] for t in r["turns"]] if "turns" in r
                                                   else [r.get("emotion", "?")]))
    lines = [*_header(data_file, language, len(results)), MARKER, "", f"# {data_file}", "",
             f"Synthetic emotion-labelled {'dialogues' if config.mode == 'dialogue' else 'texts'} from probabilistic "
             f"personas (`python -m llm.generate`), {len(results)} records in `{data_file}` (id order).", "",
             "## How it was made", "",
             f"- Profile: `{profile.name}`: {profile.description}",
             f"- Domain: `{profile.domain.name}`: {profile.domain.description}" if profile.domain else "- Domain: none",
             f"- Method: `{config.method}`", f"- Model: `{config.model or 'SmolLM2 (embedded)'}` on "
             f"{endpoint_kind(config.endpoints)}", f"- Seed: {config.seed}",
             f"- Prompt set: {summary.get('prompt_set', {}).get('name', '?')} "
             f"(hash `{summary.get('prompt_set', {}).get('hash', '?')}`), language `{language}`",
             "- Config: the resolved run is in `" + data_file + ".config.toml` (`python -m llm.generate --config ...`)",
             "", "## Sources of the persona attributes", ""]
    lines += [f"- `{name}`: {a.source or 'no source given'}" for name, a in profile.attributes.items()]
    lines += ["", "## Emotions", "", "| emotion | records | definition |", "|---|---|---|"]
    lines += [f"| {e} | {counts.get(e, 0)} | {definitions.get(e, '')} |"
              for e in dict.fromkeys([*definitions, *counts])]
    lines += ["", "## Acceptance per validation stage", "", "| stage | acceptance rate |", "|---|---|"]
    lines += [f"| {stage} | {v['acceptance_rate']} |" for stage, v in summary.get("validation", {}).items()]
    output = summary.get("output", {})
    lines += ["", "## Tokens", "", "| | this run | whole output |", "|---|---|---|",
              f"| requests | {summary.get('requests', 0)} | |",
              f"| prompt tokens | {summary.get('prompt_tokens', 0)} | {output.get('prompt_tokens', '')} |",
              f"| completion tokens | {summary.get('completion_tokens', 0)} | {output.get('completion_tokens', '')} |",
              f"| persona redraws | {summary.get('persona_redraws', 0)} | |"]
    lines += duplicates_section(summary, results)
    if "plan" in summary:
        plan = summary["plan"]
        lines += ["", "## Plan and actual", "", "| | plan | actual |", "|---|---|---|",
                  f"| requests | {plan['requests']} | {summary['requests']} |",
                  f"| prompt tokens | {plan['prompt_tokens']} | {summary['prompt_tokens']} |",
                  f"| completion tokens | {plan['completion_tokens_at_most']} (at most) | "
                  f"{summary['completion_tokens']} |",
                  f"| cost | {plan.get('cost_at_most')} (at most) | {summary['cost']} |"]
    return "\n".join(lines) + "\n"


def write_card(text: str, out: str | Path) -> Path | None:
    """Write the card to README.md beside `out`, unless a README.md there is someone else's (then None)."""
    path = Path(out).parent / "README.md"
    if path.exists() and MARKER not in path.read_text(errors="replace").split("---", 2)[-1][:200]:
        return None
    write_text(path, text)
    return path
