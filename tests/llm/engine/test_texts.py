"""The engine end to end against the fault-injecting server, in process (no sockets), on synthetic records."""
import random
from collections import Counter

import pytest

from llm import Limiter, RunStats, Settings, generate_texts
from llm.testing.faults import FaultServer, Faults
from llm.testing.record import max_in_window
from tests.support import clients
from common.errors import UsageError

EMOTIONS = ["joy", "anger", "sadness", "pleasure", "surprise", "fear", "neutral"]


def record(i: int, attempt: int = 0) -> dict:
    rng = random.Random(f"{i}/{attempt}")
    return {
        "id": i,
        "attempt": attempt,
        "emotion": EMOTIONS[i % len(EMOTIONS)],
        "stage1": {"age": rng.choice(["18-22", "30-39", "60-69"]), "occupation": rng.choice(["nurse", "student"])},
        "stage2": {"region": rng.choice(["Osaka", "Tokyo", "Hokkaido"]), "income": rng.choice(["low", "high"])},
        "stage3": {"location": rng.choice(["café", "train", "home"]), "style": rng.choice(["terse", "polite"])},
    }


def redraw(rec: dict, attempt: int) -> dict:
    return record(rec["id"], attempt)


async def run(server, n, *, limiter=None, settings=Settings(), stats=None, **kw):
    stats = stats if stats is not None else RunStats()
    async with clients.in_process(server, limiter=limiter, timeout=0.4, **kw) as client:
        results = [r async for r in generate_texts((record(i) for i in range(n)), client, settings=settings,
                                                   redraw=redraw, stats=stats)]
    return results, stats, client


async def test_every_slot_completes_exactly_once_through_every_fault():
    faults = Faults(p429=0.04, retry_after=0.02, p500=0.04, p503=0.04, p_slow=0.02, slow_s=1.0, p_drop=0.04,
                    p_malformed=0.03, p_garbled=0.05, implausible=0.15, latency=(0.0, 0.02), seed=1)
    n = 70
    server = FaultServer(faults)
    results, stats, client = await run(server, n, max_attempts=20)
    ids = [r["id"] for r in results]
    assert sorted(ids) == list(range(n))  # each once
    assert Counter(r["emotion"] for r in results) == Counter(EMOTIONS[i % 7] for i in range(n))
    assert not stats.failures
    for r in results:
        assert r["text"] and r["validation"].keys() == {"stage1", "stage2", "stage3"}
        assert {v["label"] for v in r["validation"].values()} <= {"natural", "rare but plausible"}
        assert r["persona_draws"] >= 1 and r["usage"]["requests"] >= 4
        assert r["stage1"] == record(r["id"], r["attempt"])["stage1"]  # the persona that was validated
    assert stats.redraws > 0 and any(c["implausible"] for c in stats.verdicts.values())
    rejected = [(r["id"], d) for r in results for d in r["rejected_draws"]]
    assert sum(r["persona_draws"] - 1 for r in results) >= len(rejected) > 0
    for i, d in rejected:  # each rejected persona is kept with the answers it got, for `model.priors learn`
        assert d["stage1"] == record(i, d["attempt"])["stage1"] and d["validation"]
    assert any("implausible" in {v["label"] for v in d["validation"].values()} for _, d in rejected)
    assert any(c["unparseable"] for c in stats.verdicts.values()) or stats.texts["unparseable"]
    assert client.stats.retries > 0


async def test_configured_rpm_and_tpm_hold_at_the_server():
    # scaled time: a 1 s "minute"; the server enforces the same limits and would answer 429 past them
    rpm, tpm = 30, 9000
    faults = Faults(rpm=rpm, tpm=tpm, window=1.0, p500=0.05, latency=(0.0, 0.03), implausible=0.1)
    server = FaultServer(faults)
    limiter = Limiter(rpm=rpm, tpm=tpm, concurrency=16, period=1.0, margin=0.3)
    results, _, _ = await run(server, 25, limiter=limiter)
    served = server.record.served
    assert len(results) == 25
    arrivals = server.record.arrivals
    assert arrivals[-1] - arrivals[0] > 2.5  # long enough to span several windows
    assert max_in_window([(t, 1) for t in arrivals], 1.0) <= rpm
    assert max_in_window([(t, n) for t, n, _ in served], 1.0) <= tpm
    assert 429 not in server.record.statuses


async def test_validation_and_generation_overlap():
    server = FaultServer(Faults(latency=(0.01, 0.03)))
    await run(server, 12, limiter=Limiter(concurrency=4))
    kinds = [kind for _, _, kind in sorted(server.record.served)]
    assert kinds.index("text") < len(kinds) - 1 - kinds[::-1].index("validation")


async def test_a_slot_without_an_acceptable_persona_fails_alone():
    # every persona whose stage-1 prompt mentions a nurse is implausible
    settings = Settings(max_draws=3)
    server = FaultServer(Faults(implausible_marker="nurse"))
    async with clients.in_process(server) as client:
        stats = RunStats()
        recs = [{**record(i), "stage1": {"occupation": "nurse" if i < 2 else "student"}} for i in range(5)]
        results = [r async for r in generate_texts(recs, client, settings=settings, stats=stats,
                                                   redraw=lambda rec, k: {**rec, "attempt": k})]
    assert sorted(r["id"] for r in results) == [2, 3, 4]
    assert set(stats.failures) == {0, 1}
    assert "no acceptable persona in 3 draws; last: stage 1: implausible" in stats.failures[0]


async def test_without_validation_only_texts_are_requested():
    server = FaultServer()
    results, stats, _ = await run(server, 7, settings=Settings(validate=False))
    kinds = {kind for _, _, kind in server.record.served}
    assert kinds == {"text"} and len(results) == 7 and results[0]["validation"] == {}


async def test_a_refused_key_mid_run_stops_the_run():
    server = FaultServer()
    async with clients.in_process(server) as client:
        server.faults.api_key = "rotated"
        with pytest.raises(UsageError, match="refused the API key"):
            async for _ in generate_texts([record(i) for i in range(5)], client):
                pass
