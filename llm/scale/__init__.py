"""Scale-out: one run sharded by id range over processes and machines on Ray (`python -m llm.generate --ray`).

`shards` (id ranges, merging shard files, combining summaries: pure, no Ray), `budget` (the Ray actor holding an
endpoint's limiter for all shards, and the `RemoteLimiter` shard clients use), `runner` (a shard's run, and the
shards as Ray tasks), `cli` (the `--ray` command line). Imports go cli -> runner -> budget, shards (-> llm.formats);
nothing here imports `llm.generate`."""
