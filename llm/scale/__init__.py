"""Scale-out: one run sharded by id range over processes and machines on Ray (`python -m llm.generate --ray`).

`shards` (id ranges, merging shard files, combining summaries: pure, no Ray), `budget` (the Ray actor holding an
endpoint's limits for all shards, leasing blocks of permits, and the `RemoteLimiter` shard clients use),
`shared_spend` (the --max-cost budget of all shards), `tasks` (a shard's run, and the shards as Ray tasks), `driver`
(the `--ray` run of the command line), `watchdog` (reaps a local Ray instance whose driver died). Imports go
driver -> tasks -> budget, shards (-> common.formats); nothing here imports `llm.api`."""
