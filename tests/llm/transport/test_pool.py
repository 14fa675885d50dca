"""Several weighted endpoints in one process (`--base-url URL=WEIGHT`, no Ray): the traffic split by weight, each
endpoint under its own share of --rpm/--tpm/--concurrency."""
import asyncio
from pathlib import Path

import orjson
import pytest

from common.cli import run
from llm.generate import main, parse
from llm.api.loop import connected
from llm.testing.faults import Faults, fetch, spawned
from llm.transport.pool import Pool
from llm.engine.promptset import shipped


@pytest.mark.slow
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


def test_a_pool_caches_under_one_scope_so_a_rerun_finds_every_answer_whichever_member_gave_it(tmp_path):
    first, again = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    with spawned(Faults(latency=(0.0, 0.03))) as a, spawned(Faults(latency=(0.0, 0.03))) as b:
        argv = ["--n", "12", "--domain", "sns", "--model", "test-model", "--concurrency", "4",
                "--cache", str(tmp_path / "c.sqlite"), "--quiet"]
        assert run(main, [*argv, "--base-url", f"{a}=2", "--base-url", b, "--out", str(first)]) == 0
        sent = fetch(a)["served"] + fetch(b)["served"]
        assert run(main, [*argv, "--base-url", a, "--base-url", f"{b}=2", "--out", str(again)]) == 0
        assert fetch(a)["served"] + fetch(b)["served"] == sent  # routed the other way round: all cached
    assert first.read_bytes() == again.read_bytes()


def test_one_process_and_ray_shards_share_the_cache_scope_rule():
    from llm.engine.texts import Settings
    from llm.scale.tasks import Job
    from llm.transport.cache import Cache
    from llm.transport.endpoint import parse_endpoint
    from llm.transport.factory import build_clients, cache_scope
    from llm.transport.options import ClientOptions

    endpoints = (parse_endpoint("http://b:1/v1=2"), parse_endpoint("http://a:1/v1/"))
    pool = build_clients(endpoints, "m", ClientOptions(), cache=Cache())
    assert {c._scope for c in pool.clients} == {cache_scope(endpoints, "m")} == {"pool:m:http://a:1/v1,http://b:1/v1"}
    assert Job("d", endpoints, "m", settings=Settings()).scope == cache_scope(endpoints, "m")
