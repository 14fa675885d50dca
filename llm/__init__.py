"""personagen's generation engine: validated personas -> emotion texts over any OpenAI-compatible endpoint.

    async with Client(base_url, model, limiter=Limiter(rpm=500)) as client:
        async for result in generate_texts(records, client, redraw=...):
            ...
"""
from llm.cache import Cache
from llm.client import Client, RequestFailed
from llm.limiter import Limiter
from llm.pipeline import Settings, SlotFailed, generate_texts
from llm.stats import RunStats

__all__ = ["Cache", "Client", "Limiter", "RequestFailed", "RunStats", "Settings", "SlotFailed", "generate_texts"]
