"""eval.embed: the bundled all-MiniLM-L6-v2, unit rows, and the on-disk cache keyed by text hash."""
import numpy as np
import pytest

from eval import embed

TEXTS = ["i feel so happy and joyful today", "i am delighted and glad", "the train leaves the station at noon",
         "i feel so happy and joyful today"]


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    cache = tmp_path_factory.mktemp("emb")
    return cache, embed.Embedder(cache, progress=False)(TEXTS)


def test_embeddings_are_unit_rows_and_semantic(cached):
    _, x = cached
    assert x.shape == (4, embed.DIM) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    assert (x[0] == x[3]).all()
    assert x[0] @ x[1] > x[0] @ x[2] + 0.2


def test_second_embedder_reads_the_cache_without_the_model(cached, monkeypatch):
    cache, x = cached
    assert len(list((cache / embed.MODEL_NAME).glob("shard-*.npz"))) == 1

    def no_model():
        raise AssertionError("the model was loaded although every text is cached")
    monkeypatch.setattr(embed, "load_model", no_model)
    again = embed.Embedder(cache, progress=False)
    assert (again(TEXTS[::-1]) == x[::-1]).all()
    assert again([]).shape == (0, embed.DIM)
    with pytest.raises(AssertionError, match="was loaded"):
        again(["a text nobody embedded"])
