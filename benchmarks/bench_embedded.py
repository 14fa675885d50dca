"""The embedded model's jobs, `python -m llm.generate --n 7` (the main job) and `--n 70`, without --base-url, in
three set-ups side by side in one run; prints requests/s, texts/min and the ratios.

- batched (the default): the embedded server (llm/transport/embedded/) at the engine's default concurrency on
  it, every request in flight batched step by step;
- batch 1: the same server with `--concurrency 1` (one request in flight);
- llama.cpp per core (the former default, before issue 21): one single-thread `llama_cpp.server` per usable core
  on the shipped file re-encoded as Q8_0, given to llm.generate as one --base-url each (--concurrency 2 each,
  --dialect llamacpp). Needs llama-cpp-python (`pip install -e ".[llamacpp]"`, built from source); skipped with
  the reason where it is not installed or where the CPU has AMX (llama.cpp issue 20824: its AMX path segfaults).

Each run is a fresh process with a fresh output and request cache (no answer comes from a cache), wall time from
start to exit (server start-up included, as a user waits for it). Round i runs every set-up of a job with --seed i,
the order alternating; the rates are summed over rounds. Every run's output goes through the format checks of the
embedded tests (n texts, emotions balanced, validation stages, model name); a run that fails them counts as failed.
Each run's line gives the 1-minute load average at its start: on a shared machine the set-ups' times move with it.

    python benchmarks/bench_embedded.py [--rounds 1] [--jobs 7,70] [--emotions paper]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack, contextmanager
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's code, whichever is installed

from common.cpus import has_amx, usable_cores
from llm.transport.embedded import MODEL, gguf_path
from model.emotions import DEFAULT, load_emotions

# llama.cpp's own quantizer in a child process (its per-tensor log lines stay out of the output)
REQUANTIZE = ("import ctypes, sys\nimport llama_cpp\np = llama_cpp.llama_model_quantize_default_params()\n"
              "p.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0\np.allow_requantize = True\np.nthread = 1\n"
              "sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))")


def llamacpp_missing() -> str | None:
    """Why the llama.cpp row cannot run here, or None."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (pip install -e '.[llamacpp]')"
    if has_amx():
        return "this CPU has AMX, where llama.cpp segfaults (llama.cpp issue 20824)"
    return None


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


@contextmanager
def llamacpp_servers(tmp: Path):
    """One single-thread llama_cpp.server per usable core on the shipped file as Q8_0; yields their base URLs."""
    served = tmp / "served.Q8_0.gguf"
    subprocess.run([sys.executable, "-c", REQUANTIZE, str(gguf_path()), str(served)], check=True,
                   capture_output=True)
    with ExitStack() as stack:
        urls = []
        for i in range(usable_cores()):
            port = 18600 + i
            proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(served),
                                     "--model_alias", MODEL, "--n_ctx", "2048", "--n_threads", "1",
                                     "--n_threads_batch", "1", "--host", "127.0.0.1", "--port", str(port)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            stack.callback(proc.wait)
            stack.callback(proc.terminate)
            urls.append(f"http://127.0.0.1:{port}/v1")
        for url in urls:
            _wait_ready(url)
        yield urls


def _wait_ready(url: str, timeout: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"{url} did not start")


def one_run(extra: list[str], n: int, emotions: str, seed: int) -> dict:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.jsonl"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "llm.generate", "--n", str(n), "--out", str(out), "--domain",
                               "sns", "--emotions", emotions, "--quiet", "--seed", str(seed), *extra], cwd=REPO,
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            return {"wall": wall, "requests": 0, "texts": 0, "load": load, "errors": [proc.stderr.strip()[-300:]]}
        summary = orjson.loads(Path(f"{out}.summary.json").read_bytes())
        records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    labels = load_emotions(emotions).labels
    return {"wall": wall, "requests": summary["requests"], "texts": summary["texts"], "load": load,
            "errors": format_errors(records, n, labels)}


def rates(runs: list[dict]) -> tuple[float, float, float]:
    wall = sum(r["wall"] for r in runs)
    return sum(r["requests"] for r in runs) / wall, 60 * sum(r["texts"] for r in runs) / wall, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--jobs", default="7,70", help="--n of each job, comma-separated")
    ap.add_argument("--emotions", default=DEFAULT)
    args = ap.parse_args()
    load = lambda: " ".join(f"{x:.2f}" for x in os.getloadavg()[:2])  # noqa: E731
    print(f"usable cores {usable_cores()}; load {load()} at start")
    skip = llamacpp_missing()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        setups = {"batched (default)": [], "batch 1 (--concurrency 1)": ["--concurrency", "1"]}
        if skip is None:
            urls = stack.enter_context(llamacpp_servers(Path(tmp)))
            setups["llama.cpp per core"] = [a for u in urls for a in ("--base-url", u)] + [
                "--model", MODEL, "--dialect", "llamacpp", "--concurrency", "2"]
        for n in map(int, args.jobs.split(",")):
            runs = {name: [] for name in setups}
            for i in range(args.rounds):
                for name, extra in (setups.items() if i % 2 == 0 else reversed(setups.items())):
                    r = one_run(extra, n, args.emotions, seed=i)
                    runs[name].append(r)
                    print(f"--n {n} round {i + 1} {name:28} {r['wall']:6.1f} s  {r['requests']:4} requests  "
                          f"{r['texts']:3} texts  load {r['load']:.2f}  "
                          f"{'format OK' if not r['errors'] else 'FORMAT ERRORS: ' + '; '.join(r['errors'])}",
                          flush=True)
            got = {name: rates(rs) for name, rs in runs.items()}
            for name, (rps, tpm, wall) in got.items():
                print(f"--n {n} {name:28} {rps:5.2f} requests/s  {tpm:6.1f} texts/min  (over {wall:.0f} s)")
            rps, tpm, _ = got["batched (default)"]
            for name, goal in (("batch 1 (--concurrency 1)", 3), ("llama.cpp per core", 2)):
                if name in got:
                    print(f"--n {n} batched / {name}: {rps / got[name][0]:.2f}x requests/s, "
                          f"{tpm / got[name][1]:.2f}x texts/min (goal >= {goal})")
                else:
                    print(f"--n {n} batched / {name}: skipped, {skip}")
    print(f"load {load()} at end")


if __name__ == "__main__":
    main()
