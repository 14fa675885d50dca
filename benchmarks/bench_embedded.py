"""The embedded model's main job, `python -m llm.generate --n 7` without --base-url, in today's and the former
set-up, alternating, in one run; prints requests/s, texts/min and the ratio.

- baseline (the set-up before issue 16): ONE llama.cpp server with a thread per usable core, --concurrency 2, on
  the shipped Q4_1 file;
- per-core servers only: one single-thread server per usable core behind the weighted Pool, 2 in flight each, on
  the shipped Q4_1 file (what each of the two changes brings);
- new (the default now): those servers on the Q8_0 re-encoding of the file (llm.transport.gguf).

Each run is a fresh process with a fresh output and request cache (no answer comes from a cache), wall time from
start to exit (server start-up included, as a user waits for it). Round i runs every set-up with --seed i: how
many personas the model rejects and how many texts fail the post-checks varies from seed to seed (and from one
set of weights to another), so the rates are summed over rounds of different seeds. Every run's output goes
through the format checks of tests/test_llm_embedded.py (n texts, emotions balanced, validation stages, model
name); a run that fails them is reported and counts as failed. The Q8_0 file is made before the first run (once
per machine, about 1 s), as a user's first run makes it.

    python benchmarks/bench_embedded.py [--n 7] [--rounds 2] [--emotions joy,anger]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's code, whichever is installed

from common.cpus import usable_cores
from llm.transport.embedded import MODEL, served_gguf, server_plan

# llm.generate with the embedded servers fixed at argv[1] servers (0: the default plan), on the shipped file when
# argv[2] is "shipped" (else the served Q8_0 file, the default)
LAUNCH = ("import functools, sys\nfrom llm.transport import embedded\nk = int(sys.argv[1])\n"
          "if k:\n    embedded.embedded_servers = functools.partial(embedded.embedded_servers, servers=k)\n"
          "if sys.argv[2] == 'shipped':\n    embedded.served_gguf = embedded.gguf_path\n"
          "from common.cli import run\nfrom llm.generate import main\nsys.exit(run(main, sys.argv[3:]))\n")


def format_errors(records: list[dict], n: int, emotions: list[str]) -> list[str]:
    """What breaks the output format (empty when the run's output is well formed)."""
    errors = []
    if sorted(r["id"] for r in records) != list(range(n)):
        errors.append(f"ids {sorted(r['id'] for r in records)} != 0..{n - 1}")
    per = Counter(r["emotion"] for r in records)
    if set(per) - set(emotions) or max(per.values(), default=0) - min(per.values(), default=0) > 1:
        errors.append(f"emotions {dict(per)}")
    for r in records:
        if not (isinstance(r["text"], str) and r["text"].strip()) or r["model"] != MODEL \
                or set(r["validation"]) != {"stage1", "stage2", "stage3"}:
            errors.append(f"record {r['id']} malformed")
    return errors


def one_run(servers: int, model: str, n: int, emotions: str, seed: int) -> dict:
    with tempfile.TemporaryDirectory(dir=REPO) as tmp:
        out = Path(tmp) / "out.jsonl"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", LAUNCH, str(servers), model, "--n", str(n), "--out", str(out),
                               "--domain", "sns", "--emotions", emotions, "--quiet", "--seed", str(seed)], cwd=REPO,
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            return {"wall": wall, "requests": 0, "texts": 0, "errors": [proc.stderr.strip()[-300:]]}
        summary = orjson.loads(Path(f"{out}.summary.json").read_bytes())
        records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    return {"wall": wall, "requests": summary["requests"], "texts": summary["texts"],
            "errors": format_errors(records, n, emotions.split(","))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--emotions", default="joy,anger")
    args = ap.parse_args()
    cores = usable_cores()
    served_gguf()  # made once per machine; not part of any run's time
    new_servers, new_threads = server_plan()
    setups = {f"baseline: 1 server x {cores} threads, Q4_1": (1, "shipped"),
              f"{new_servers} server(s) x {new_threads} thread(s), Q4_1": (0, "shipped"),
              f"new: {new_servers} server(s) x {new_threads} thread(s), Q8_0": (0, "served")}
    print(f"usable cores {cores}; load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} at start")
    runs = {name: [] for name in setups}
    for i in range(args.rounds):
        for name, (servers, model) in (setups.items() if i % 2 == 0 else reversed(setups.items())):
            r = one_run(servers, model, args.n, args.emotions, seed=i)
            runs[name].append(r)
            print(f"round {i + 1} {name:40} {r['wall']:6.1f} s  {r['requests']:3} requests  {r['texts']} texts  "
                  f"{'format OK' if not r['errors'] else 'FORMAT ERRORS: ' + '; '.join(r['errors'])}", flush=True)
    rates = {}
    for name, rs in runs.items():
        wall = sum(r["wall"] for r in rs)
        rates[name] = (sum(r["requests"] for r in rs) / wall, 60 * sum(r["texts"] for r in rs) / wall)
        print(f"{name:46} {rates[name][0]:5.2f} requests/s  {rates[name][1]:5.1f} texts/min "
              f"(over {len(rs)} runs, {wall:.0f} s)")
    (base_rps, base_tpm), *_, (new_rps, new_tpm) = rates.values()
    for name, (rps, tpm) in list(rates.items())[1:]:
        print(f"ratio {name.split(':')[0]} / baseline: {rps / base_rps:.2f}x requests/s, {tpm / base_tpm:.2f}x "
              f"texts/min" + (" (goal >= 2)" if name.startswith("new") else ""))
    print(f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} at end")


if __name__ == "__main__":
    main()
