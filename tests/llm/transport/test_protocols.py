"""The declared seams: `Client` and `Pool` are `ChatClient`s, `Limiter` and `RemoteLimiter` are `RateLimiter`s,
checked at runtime (isinstance) and structurally (every protocol method exists and takes the protocol's
parameters)."""
import inspect

import pytest

from llm.engine.rounds import Rounds
from llm.engine.slots import RoundsClient
from llm.scale.budget import RemoteLimiter
from llm.scale.shared_spend import RemoteSpend
from llm.transport.client import Client
from llm.transport.limiter import Limiter
from llm.transport.pool import Pool
from llm.transport.protocols import ChatClient, RateLimiter, Spending
from llm.transport.spend import Prices, Spend


def accepts(implementation, declared) -> list[str]:
    """The parameters of `declared` that `implementation` does not take (by name, or through *args/**kwargs)."""
    have = inspect.signature(implementation).parameters
    if any(p.kind is p.VAR_KEYWORD for p in have.values()):
        return []
    return [name for name in inspect.signature(declared).parameters if name not in have]


def members(protocol) -> list[str]:
    return sorted(name for name in dir(protocol) if not name.startswith("_") and callable(getattr(protocol, name)))


def client() -> Client:
    return Client("http://127.0.0.1:9/v1", "m")


@pytest.mark.parametrize("make, protocol", [
    (client, ChatClient),
    (lambda: Pool([client(), client()], [1, 2]), ChatClient),
    (Limiter, RateLimiter),
    (lambda: RemoteLimiter(object(), "shard/1", concurrency=4, tpm=None), RateLimiter),
    (lambda: Rounds(client()), RoundsClient),
    (lambda: Spend(Prices(1, 1)), Spending),
    (lambda: RemoteSpend(object(), type("Store", (), {"load": lambda self: 0.0})()), Spending),
], ids=["Client", "Pool", "Limiter", "RemoteLimiter", "Rounds", "Spend", "RemoteSpend"])
def test_the_implementations_satisfy_their_protocols(make, protocol):
    obj = make()
    assert isinstance(obj, protocol)
    for name in members(protocol):
        assert not accepts(getattr(obj, name), getattr(protocol, name).__get__(obj)), (type(obj).__name__, name)


def test_a_fake_missing_a_member_is_not_a_client():
    class Fake:
        model, stats, concurrency, halted, unstored = "m", None, 1, False, 0

        async def chat(self, messages, **kw):
            raise NotImplementedError

        def halt(self, reason):
            pass

    assert not isinstance(Fake(), ChatClient)  # no flush: the runner could not make results durable
    Fake.flush = lambda self: None
    assert isinstance(Fake(), ChatClient)
    del Fake.halt
    assert not isinstance(Fake(), ChatClient)  # no halt: a write the disk refused could not stop the sending
