"""Clients for tests: `client(url, **kw)` is a Client of the test model whose ClientOptions fields are taken from
`kw` (quick retries by default), the rest of `kw` going to Client itself."""
from dataclasses import fields

from llm.transport.client import Client
from llm.transport.options import ClientOptions

OPTIONS = {f.name for f in fields(ClientOptions)}


def client(url: str, model: str = "test-model", **kw) -> Client:
    options = {"backoff": (0.01, 0.05), **{k: kw.pop(k) for k in list(kw) if k in OPTIONS}}
    return Client(url, model, options=ClientOptions(**options), **kw)


def in_process(server, model: str = "test-model", **kw) -> Client:
    """`client` reaching the fault server `server` in process, through its MockTransport: no socket is opened, and
    the server need not be entered."""
    return client("http://fault-server.test/v1", model, transport=server.transport(), **kw)
