"""personagen's generation engine: validated personas -> emotion texts over any OpenAI-compatible endpoint.

    async with Client(base_url, model, limiter=Limiter(rpm=500)) as client:
        async for result in generate_texts(records, client, redraw=...):
            ...

Layers: `llm.transport` (client, limiter, cache, dialects, pool, embedded server, a command line's connection),
`llm.engine` (the slot runner and the modes on it: texts, dialogues; prompts, answers, run stats, resuming),
`llm.scale` (shards on Ray with a global budget); `llm.generate` is the command line, `llm.testserver` the
fault-injecting server of the tests. Each layer imports only the ones before it.

The public names below are imported on first use (`common.lazy`), so `import llm.transport.limiter` loads no run
API (and neither does the embedded server's process).
"""
from common.lazy import lazy_exports

__all__ = ["Cache", "Client", "Limiter", "RequestFailed", "Run", "RunConfig", "RunStats", "Settings", "SlotFailed",
           "agenerate_dataset", "generate_dataset", "generate_texts"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "Cache": "llm.transport.cache", "Client": "llm.transport.client", "Limiter": "llm.transport.limiter",
    "RequestFailed": "llm.transport.client", "Run": "llm.api", "RunConfig": "llm.config",
    "RunStats": "llm.engine.stats", "Settings": "llm.engine.texts", "SlotFailed": "llm.engine.runner",
    "agenerate_dataset": "llm.api", "generate_dataset": "llm.api", "generate_texts": "llm.engine.texts",
})
