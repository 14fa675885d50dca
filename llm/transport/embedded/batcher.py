"""Step-level batching: every request in flight advances by one model step together, and a request that arrives
joins at the next step (its prompt read in that step, less the prefix kept from earlier requests:
llm.transport.embedded.prefix), while one that finishes leaves at once.

The model runs in one worker thread; the event loop only queues requests and awaits their futures. A request stops
at the end-of-text token, when its grammar is complete, at one of its `stop` strings (cut there) or at `max_tokens`.
Tokens that a request's grammar forces (`{"label":"` at the start of a JSON answer) are added to its answer without
sampling and fed to the model together at its next step, not one step each. A request whose caller went away (a
client that disconnected) is dropped at the next step, and the others go on. Each sequence's logits do not depend on
its batch (llm.transport.embedded.llama) and its sampler is its own, so a request's answer is the same whatever else
is in flight. On hardware where no row block is exact (none seen so far) the batcher runs one request at a time, so
that this still holds, only slower."""
from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass, field

import numpy as np

from .grammar import Grammars
from .llama import Llama, Sequence
from .prefix import Prefixes
from .sampling import Sampler
from .tokens import ChatTokenizer

MAX_BATCH = 64  # sequences in one step
MAX_PREFILL = 1024  # prompt tokens read in one step (a longer prompt is read alone): decodes wait at most one such step


@dataclass
class Job:
    """One request as the batcher sees it, and what it answers: `text`, `finish` ("stop" or "length"; "running"
    while in the batch) and `tokens` (the completion's)."""
    prompt: list[int]
    max_tokens: int
    sampler: Sampler
    matcher: object | None = None  # an llguidance matcher, or None for free text
    stop: tuple[str, ...] = ()
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    finish: str = "length"
    future: asyncio.Future | None = None
    loop: asyncio.AbstractEventLoop | None = None
    sequence: Sequence | None = None

    @property
    def gone(self) -> bool:
        return self.future is not None and self.future.done()


class Batcher:
    def __init__(self, model: Llama, tokenizer: ChatTokenizer, grammars: Grammars):
        self.model, self.tokenizer, self.grammars = model, tokenizer, grammars
        self.prefixes = Prefixes()
        self._queue: queue.Queue[Job] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="embedded-model", daemon=True)
        self._thread.start()

    async def complete(self, job: Job) -> Job:
        """`job` answered (its fields filled in); cancelling the await drops it from the batch."""
        job.loop = asyncio.get_running_loop()
        job.future = job.loop.create_future()
        self._queue.put(job)
        return await job.future

    def _run(self) -> None:
        active: list[Job] = []
        while True:
            active = [j for j in active if not j.gone]
            self._admit(active)
            if not active:
                continue
            try:
                self._step(active)
            except Exception as exc:  # a bug, not a request's fault: fail the batch, keep serving
                for job in active:
                    job.loop.call_soon_threadsafe(_settle, job, exc)
                active = []
                continue
            for job in [j for j in active if j.finish != "running"]:
                job.loop.call_soon_threadsafe(_settle, job, None)
            active = [j for j in active if j.finish == "running"]

    def _admit(self, active: list[Job]) -> None:
        """New requests into the batch: block for one when there is nothing to do, then take what is queued while
        the batch and the step's prompt tokens have room."""
        budget = MAX_PREFILL
        room = MAX_BATCH if self.model.block is not None else 1  # no row-exact block: batch 1 stays exact
        while len(active) < room:
            try:
                job = self._queue.get(block=not active)
            except queue.Empty:
                return
            if job.gone:
                continue
            job.sequence = self.model.new_sequence(len(job.prompt) + job.max_tokens)
            head = job.prompt + self._forced(job, job.max_tokens - 1)  # room for one sampled token
            job.sequence.length = self.prefixes.reuse(head, job.sequence)
            job.sequence.pending = head[job.sequence.length:]
            job.finish = "running"
            active.append(job)
            budget -= len(job.sequence.pending)
            if budget <= 0:
                return

    def _step(self, active: list[Job]) -> None:
        opened = [(j.prompt + j.tokens, j.sequence) for j in active if j.sequence.length < len(j.prompt)]
        logits = self.model.step([j.sequence for j in active]).numpy()  # sampled in numpy, on this thread
        for head, sequence in opened:
            self.prefixes.keep(head, sequence)
        if any(j.matcher is not None for j in active):
            logits[~self.grammars.allowed([j.matcher for j in active])] = -np.inf
        for job, row in zip(active, logits):
            self._advance(job, job.sampler(row))

    def _forced(self, job: Job, room: int) -> list[int]:
        """The tokens `job`'s grammar forces next (at most `room`), added to its answer: fed to the model together
        at its next step instead of one step each."""
        if job.matcher is None or room <= 0:
            return []
        forced = job.matcher.compute_ff_tokens()[:room]
        job.matcher.consume_tokens(forced)
        job.tokens += forced
        return forced

    def _advance(self, job: Job, token: int) -> None:
        done, fed = token in self.tokenizer.eos, [token]
        if not done:
            job.tokens.append(token)
            matcher = job.matcher  # a grammar that is complete ends it (an error cannot happen under its own mask)
            done = matcher is not None and (not matcher.consume_token(token) or matcher.is_stopped())
            if not done:
                fed += self._forced(job, job.max_tokens - len(job.tokens))
                done = matcher is not None and matcher.is_stopped()
        full = len(job.tokens) >= job.max_tokens
        if job.stop or done or full:  # the text is decoded only where it is looked at
            job.text = self.tokenizer.decode(job.tokens)
            cuts = [at for at in (job.text.find(s) for s in job.stop) if at >= 0]
            if cuts:
                job.text, done = job.text[:min(cuts)], True
        if done:
            job.finish = "stop"
        elif full:
            job.finish = "length"
        else:
            job.sequence.pending = fed


def _settle(job: Job, exc: BaseException | None) -> None:
    if job.future.done():
        return
    if exc is None:
        job.sequence = None  # its cache is freed with it
        job.future.set_result(job)
    else:
        job.future.set_exception(exc)
