"""personagen's generation engine: validated personas -> emotion texts over any OpenAI-compatible endpoint.

    async with Client(base_url, model, limiter=Limiter(rpm=500)) as client:
        async for result in generate_texts(records, client, redraw=...):
            ...

Layers: `llm.transport` (client, limiter, cache, dialects, pool, embedded server, a command line's connection),
`llm.engine` (the slot runner and the modes on it: texts, dialogues; prompts, answers, run stats, resuming),
`llm.scale` (shards on Ray with a global budget); `llm.generate` is the command line, `llm.testserver` the
fault-injecting server of the tests. Each layer imports only the ones before it.
"""
from llm.engine.runner import SlotFailed
from llm.engine.stats import RunStats
from llm.api import Run, agenerate_dataset, generate_dataset
from llm.config import RunConfig
from llm.engine.texts import Settings, generate_texts
from llm.transport.cache import Cache
from llm.transport.client import Client, RequestFailed
from llm.transport.limiter import Limiter

__all__ = ["Cache", "Client", "Limiter", "RequestFailed", "Run", "RunConfig", "RunStats", "Settings", "SlotFailed",
           "agenerate_dataset", "generate_dataset", "generate_texts"]
