"""The shipped GGUF file read into what the embedded model needs: its shape (`Shape`), its weights as float32
torch tensors (dequantized by the `gguf` package, about 1.5 s for SmolLM2-135M), and its tokenizer with the chat
template stored in the file (converted by transformers once, about 6 s, and kept under the cache directory, named
by the file's content hash; later runs load it without importing transformers)."""
from __future__ import annotations

import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.hashing import hexdigest


@dataclass(frozen=True)
class Shape:
    """A llama-architecture model's sizes, as the GGUF metadata gives them."""
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    vocab: int
    context: int
    rope_base: float
    rms_eps: float

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class _Cursor:
    """Reads GGUF's little-endian fields from a buffer."""

    def __init__(self, buf):
        self.buf, self.at = buf, 0

    def scalar(self, fmt: str):
        (value,) = struct.unpack_from(fmt, self.buf, self.at)
        self.at += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.scalar("<Q")
        self.at += n
        return bytes(self.buf[self.at - n:self.at]).decode("utf-8", "replace")

    def value(self, kind: int):
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item, count = self.scalar("<I"), self.scalar("<Q")
            if item == _STRING:  # the tokenizer's vocabulary and merges: skipped, not needed here
                for _ in range(count):
                    n = self.scalar("<Q")
                    self.at += n
                return None
            fmt = _SCALARS[item]
            self.at += struct.calcsize(fmt) * count
            return None
        return self.scalar(_SCALARS[kind])


def _parse(buf) -> tuple[dict, list[tuple[str, list[int], int, int]], int]:
    """(metadata, [(name, dims, ggml type, offset)], data start) of a GGUF file's bytes; ValueError if it is not
    one (the metadata's arrays are skipped)."""
    c = _Cursor(buf)
    if bytes(buf[:4]) != b"GGUF":
        raise ValueError("not a GGUF file")
    c.at = 4
    if c.scalar("<I") not in (2, 3):
        raise ValueError("an unsupported GGUF version")
    tensors, entries = c.scalar("<Q"), c.scalar("<Q")
    meta = {}
    for _ in range(entries):
        key = c.string()
        meta[key] = c.value(c.scalar("<I"))
    infos = []
    for _ in range(tensors):
        name = c.string()
        dims = [c.scalar("<Q") for _ in range(c.scalar("<I"))]
        infos.append((name, dims, c.scalar("<I"), c.scalar("<Q")))
    align = meta.get("general.alignment") or 32
    return meta, infos, -(-c.at // align) * align


def _value(meta: dict, key: str):
    if meta.get(key) is None:
        raise ValueError(f"the GGUF file has no {key!r}")
    return meta[key]


def read(path: Path) -> tuple[Shape, dict]:
    """(shape, name -> float32 torch tensor) of the llama GGUF file `path`; ValueError for another architecture or
    a file that is not GGUF. (gguf's own GGUFReader takes 2.6 s on SmolLM2's tokenizer arrays; this 0.1 s.)"""
    import gguf
    import torch

    buf = path.read_bytes()
    try:
        meta, infos, start = _parse(buf)
    except (struct.error, KeyError) as exc:
        raise ValueError(f"{path.name} is not a readable GGUF file ({exc})") from None
    arch = _value(meta, "general.architecture")
    if arch != "llama":
        raise ValueError(f"{path.name} is a {arch!r} model; the embedded server runs llama-architecture models")
    shape = Shape(
        layers=int(_value(meta, "llama.block_count")), hidden=int(_value(meta, "llama.embedding_length")),
        heads=int(_value(meta, "llama.attention.head_count")),
        kv_heads=int(_value(meta, "llama.attention.head_count_kv")),
        vocab=int(_value(meta, "llama.vocab_size")), context=int(_value(meta, "llama.context_length")),
        rope_base=float(_value(meta, "llama.rope.freq_base")),
        rms_eps=float(_value(meta, "llama.attention.layer_norm_rms_epsilon")))
    tensors = {}
    for name, dims, kind, offset in infos:
        qtype = gguf.GGMLQuantizationType(kind)
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        rows = list(reversed(dims[1:]))
        nbytes = int(np.prod(dims)) // block * size
        raw = np.frombuffer(buf, np.uint8, nbytes, start + offset).reshape(*rows, dims[0] // block * size)
        tensors[name] = torch.from_numpy(np.array(gguf.quants.dequantize(raw, qtype), dtype=np.float32))
    return shape, tensors


def tokenizer_file(path: Path, cache_dir: Path) -> Path:
    """The Hugging Face `tokenizer.json` of the GGUF file `path`, converted once by transformers (about 6 s) and
    kept under `cache_dir`/tokenizer-<content hash>/ (its `tokenizer_config.json` beside it holds the chat
    template); OSError when it cannot be kept."""
    kept = cache_dir / f"tokenizer-{hexdigest(path.read_bytes())[:12]}"
    if not (kept / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".tokenizer-"))
        try:
            tok.save_pretrained(tmp)
            os.replace(tmp, kept)  # whole or not at all; a concurrent first run may have kept it already
        except OSError:
            if not (kept / "tokenizer.json").is_file():
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return kept / "tokenizer.json"
