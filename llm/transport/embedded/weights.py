"""The shipped GGUF file read into what the embedded model needs: its shape (`Shape`), its weights as float32
torch tensors (and its Q4_1 matrices as stored, for llm.transport.embedded.int4), and its tokenizer with the chat
template stored in the file (converted by transformers once, about 6 s, and kept under the cache directory, named
by the file's content hash; later runs load it without importing transformers)."""
from __future__ import annotations

import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.hashing import hexdigest

if TYPE_CHECKING:
    import torch


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


@dataclass(frozen=True)
class Q4_1:
    """A matrix stored as Q4_1: codes 0..15 [rows, columns] (uint8) and, for each group of 32 columns of a row, a
    scale and a minimum [rows, columns / 32] (float32); a weight is code * scale + minimum."""
    codes: torch.Tensor
    scales: torch.Tensor
    mins: torch.Tensor

    def dequantized(self) -> torch.Tensor:
        """The float32 weights (in numpy: one thread, 10x torch's two threads on a busy machine)."""
        import torch

        rows, columns = self.codes.shape
        groups = self.codes.numpy().reshape(rows, -1, 32).astype(np.float32)
        weights = groups * self.scales.numpy()[..., None] + self.mins.numpy()[..., None]
        return torch.from_numpy(weights.reshape(rows, columns))


def _q4_1(raw: np.ndarray) -> Q4_1:
    """Q4_1 blocks [rows, blocks, 20 bytes] (half scale, half minimum, 16 bytes of codes: the low nibbles are
    the block's first 16 columns, the high ones its last 16) as a Q4_1."""
    import torch

    packed = raw[..., 4:]
    codes = np.concatenate([packed & 0x0F, packed >> 4], axis=-1).reshape(raw.shape[0], -1)
    scales, mins = _halves(raw[..., 0:2]), _halves(raw[..., 2:4])
    return Q4_1(torch.from_numpy(codes), torch.from_numpy(scales), torch.from_numpy(mins))


def _halves(raw: np.ndarray) -> np.ndarray:
    """Little-endian half floats, two bytes each along the last axis, as float32 (that axis dropped)."""
    return raw.copy().view(np.float16)[..., 0].astype(np.float32)


def read(path: Path) -> tuple[Shape, dict, dict]:
    """(shape, name -> float32 torch tensor, name -> Q4_1 of the matrices stored so) of the llama GGUF file
    `path`; ValueError for another architecture or a file that is not GGUF. Q4_1 and Q8_0 (the shipped file's
    types) are dequantized here as the `gguf` package does, others by it. (gguf's own GGUFReader takes 2.6 s on
    SmolLM2's tokenizer arrays, its dequantization 1.5 s; this 0.1 s and 0.3 s.)"""
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
    tensors, q4_1 = {}, {}
    for name, dims, kind, offset in infos:
        qtype = gguf.GGMLQuantizationType(kind)
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        rows = list(reversed(dims[1:]))
        nbytes = int(np.prod(dims)) // block * size
        raw = np.frombuffer(buf, np.uint8, nbytes, start + offset).reshape(*rows, dims[0] // block * size)
        if qtype == gguf.GGMLQuantizationType.Q4_1 and len(rows) == 1:
            q4_1[name] = _q4_1(raw.reshape(rows[0], -1, size))
            tensors[name] = q4_1[name].dequantized()
        elif qtype == gguf.GGMLQuantizationType.Q8_0:  # blocks of a half scale and 32 int8 codes
            blocks = raw.reshape(-1, size)
            codes = blocks[:, 2:].copy().view(np.int8).astype(np.float32)
            tensors[name] = torch.from_numpy((codes * _halves(blocks[:, :2])[:, None]).reshape(*rows, dims[0]))
        else:
            tensors[name] = torch.from_numpy(np.array(gguf.quants.dequantize(raw, qtype), dtype=np.float32))
    return shape, tensors, q4_1


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
