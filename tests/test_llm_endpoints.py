"""Several weighted endpoints in one process (`--base-url URL=WEIGHT`, no Ray): the traffic split by weight, each
endpoint under its own share of --rpm/--tpm/--concurrency."""
import asyncio
from pathlib import Path

import orjson

from common.cli import run
from llm.generate import main, parse
from llm.api.loop import connected
from llm.testing.server import Faults, fetch, spawned
from llm.transport.pool import Pool
from llm.engine.promptset import shipped


def test_two_weighted_endpoints_split_the_traffic_and_keep_their_limits(tmp_path):
    out = tmp_path / "out.jsonl"
    with spawned(Faults(rpm=6, latency=(0.0, 0.02))) as heavy, spawned(Faults(rpm=2, latency=(0.0, 0.02))) as light:
        code = run(main, ["--n", "8", "--out", str(out), "--domain", "sns", "--no-validate", "--model", "test-model",
                          "--base-url", f"{heavy}=3", "--base-url", light, "--rpm", "2", "--quiet"])
        stats = fetch(heavy), fetch(light)
    assert code == 0
    assert [s["kinds"].get("text", 0) for s in stats] == [6, 2]  # 3:1, exactly (smooth weighted round robin)
    assert all(s["over_limit"] == 0 and "429" not in s["statuses"] for s in stats)  # each under its own --rpm
    summary = orjson.loads(Path(f"{out}.summary.json").read_bytes())
    assert sorted(e["requests"] for e in summary["endpoints"].values()) == [2, 6]
    assert [orjson.loads(line)["id"] for line in out.read_bytes().splitlines()] == list(range(8))


def test_each_endpoint_of_a_pool_gets_its_weight_of_the_limits(tmp_path):
    async def limits(urls):
        config = parse(["--n", "1", "--out", str(tmp_path / "o.jsonl"), "--model", "test-model", "--rpm", "40",
                        "--tpm", "4000", "--concurrency", "8", *[a for u in urls for a in ("--base-url", u)]]).config
        async with connected(config, tmp_path / "o.jsonl", shipped("en")) as client:
            assert isinstance(client, Pool)
            return [(c.limiter.rpm, c.limiter.tpm, c.limiter.concurrency) for c in client.clients]

    with spawned(Faults()) as a, spawned(Faults()) as b:
        assert asyncio.run(limits([f"{a}=3", f"{b}=1"])) == [(120, 12000, 24), (40, 4000, 8)]
