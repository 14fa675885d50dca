"""Batch files for any server (`--batch-dir DIR`): a round's input file is written to DIR (`<name>.jsonl`) instead
of being uploaded, and its output is read from `<name>.jsonl.out.jsonl` once it appears there, as vLLM's
`python -m vllm.entrypoints.openai.run_batch -i IN -o IN.out.jsonl --model M` writes it (a provider's console
output too; error lines may be in the same file).

An output is taken when it answers every line of its input, or when it is whole (every line complete JSON) and
unchanged since the last look; the custom_ids it lacks go into the next round. With `wait` false (--no-wait) a
round stops at `Waiting` (exit 3) instead of looking again: rerun once the outputs are there."""
from __future__ import annotations

from pathlib import Path

from common.files import write_bytes

from .jobs import Waiting
from .ledger import Entry, Ledger
from .lines import complete, outcomes

OUT = ".out.jsonl"


class OfflineDir:
    """A `Backend` (llm.transport.batch.jobs) over the directory `directory`."""

    def __init__(self, directory: str | Path, wait: bool = True, say=lambda text: None):
        self.directory, self.wait, self.say = Path(directory), wait, say
        self._seen: dict[str, tuple[float, int]] = {}  # output name -> (mtime, size) at the last look
        self._announced: set[str] = set()

    def input(self, entry: Entry) -> Path:
        return self.directory / f"{entry.name}.jsonl"

    def output(self, entry: Entry) -> Path:
        return self.directory / f"{entry.name}.jsonl{OUT}"

    async def submit(self, entry: Entry, data: bytes, ledger: Ledger) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_bytes(self.input(entry), data)
        ledger.update(entry, state="written")

    async def adopt(self, entry: Entry, ledger: Ledger) -> bool:
        return entry.state == "written" and self.input(entry).is_file()

    async def finished(self, entry: Entry) -> tuple[str, bytes, bytes] | None:
        path = self.output(entry)
        try:
            stat = path.stat()
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        seen, self._seen[path.name] = self._seen.get(path.name), (stat.st_mtime, stat.st_size)
        if not complete(data):
            return None
        answered = outcomes(data)
        if set(entry.custom_ids) <= set(answered) or seen == (stat.st_mtime, stat.st_size) or not self.wait:
            return "completed", data, b""
        return None

    def waiting(self, entries: list[Entry]) -> Waiting | None:
        paths = [str(self.input(e)) for e in entries]
        if not self.wait:
            return Waiting(f"batch files waiting for their outputs: {', '.join(paths)} (each answered into "
                           f"<file>{OUT}, e.g. by vLLM's run_batch); rerun this command once they are there")
        for path in paths:
            if path not in self._announced:
                self._announced.add(path)
                self.say(f"waiting for {path}{OUT}")
        return None
