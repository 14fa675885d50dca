"""personagen's generation engine: validated personas -> emotion texts over any OpenAI-compatible endpoint.

    from llm import RunConfig, generate_dataset   # what `python -m llm.generate` runs

    async with Client(base_url, model, options=ClientOptions(rpm=500)) as client:
        async for result in generate_texts(records, client, redraw=...):
            ...

Layers, each importing only the ones before it: `llm.transport` (endpoints, client options, the client factory,
client, limiter, cache, dialects, pool, the embedded server, the budget in money, batch files and the Batch API),
`llm.engine` (the slot runner and the modes on it: texts, dialogues; rounds of batch mode; prompts, answers, run
stats, resuming), `llm.scale` (shards on Ray with a global budget),
`llm.api` (the run API: a typed `RunConfig`, its command line, what runs it, plan, preview, card). `llm.generate`
is the command line; `llm.testing` holds the fault-injecting server of the tests (`python -m llm.testserver`).

The public names below are imported on first use (`common.lazy`), so `import llm.transport.limiter` loads no run
API (and neither does the embedded server's process).
"""
from common.lazy import lazy_exports

__all__ = ["Cache", "Client", "ClientOptions", "Endpoint", "Limiter", "MockTransport", "Reply", "Request",
           "RequestFailed", "Run", "RunConfig", "RunStats", "Settings", "SlotFailed", "agenerate_dataset",
           "generate_dataset", "generate_texts"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "Cache": "llm.transport.cache", "Client": "llm.transport.client", "ClientOptions": "llm.transport.options",
    "Endpoint": "llm.transport.endpoint", "Limiter": "llm.transport.limiter", "MockTransport": "llm.transport.http",
    "Reply": "llm.transport.http", "Request": "llm.transport.http", "RequestFailed": "llm.transport.client",
    "Run": "llm.api.run", "RunConfig": "llm.api.config", "RunStats": "llm.engine.stats",
    "Settings": "llm.engine.texts", "SlotFailed": "llm.engine.slots", "agenerate_dataset": "llm.api.run",
    "generate_dataset": "llm.api.run", "generate_texts": "llm.engine.texts",
})
