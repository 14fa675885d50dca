"""A llama-architecture decoder over packed rows, written so that a sequence's numbers never depend on the others.

One `step` runs every active sequence's new tokens together: a prompt (prefill) or a few tokens (decode) each,
packed into one [rows, hidden] matrix for every matrix product, with attention done per sequence against its own
key/value cache, in pieces: a sequence's new positions are cut at multiples of CHUNK and each piece attends, in a
call of its own, to the positions up to its end, so a piece is computed the same way whether the positions before it
were fed at this step or earlier (what lets llm.transport.embedded.prefix keep prompt prefixes). On the CPU, BLAS
computes a row of a product the same way whatever the other rows hold, but not always whatever their number (one row
may take a matrix-vector path, small counts other kernels). `step` pads the packed rows to a multiple of the
smallest block for which this machine's products are row-exact (`row_block`, probed once at load), so a sequence's
logits are bitwise the same alone or in any batch, and sampling (seeded per request) makes the same tokens. Rotary
embeddings are applied to adjacent pairs: GGUF files store q and k permuted for that convention.

Matrix products run in bfloat16 where the hardware has it (`compute_dtype`: AVX512-BF16 or AMX on the CPU, a GPU
that supports it): 2.2-2.6x faster than float32 in a one-off timing on the 2-core AVX512-BF16 machine, since the
weights are read once per step. The rows of a sequence's later steps (a sampled token and the tokens forced after
it) go through int4 products of the file's Q4_1 matrices instead where torch has the CPU kernel
(llm.transport.embedded.int4, probed row-exact like the others): which product a row takes depends on its own
sequence only. Norms, rotary embeddings, attention and the residual stream stay float32.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from . import int4
from .weights import Q4_1, Shape

BLOCKS = (1, 2, 4, 8, 16, 32, 64)  # row blocks tried by `row_block`, smallest first
_MATRICES = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
CHUNK = 16  # positions per attention piece: tokens fed together attend in pieces cut at multiples of CHUNK


def chunks(first: int, n: int) -> list[tuple[int, int]]:
    """(position, count) of the pieces that positions first .. first+n-1 are cut into at multiples of CHUNK."""
    cuts = [first, *range((first // CHUNK + 1) * CHUNK, first + n, CHUNK), first + n]
    return [(a, b - a) for a, b in zip(cuts, cuts[1:])]


def compute_dtype(device: str) -> torch.dtype:
    """bfloat16 where the hardware multiplies it natively, else float32."""
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return torch.bfloat16 if native else torch.float32


def row_block(products: list[tuple[int, Callable]], device: str = "cpu", dtype: torch.dtype = torch.float32,
              blocks=BLOCKS, trials: int = 6) -> int | None:
    """The smallest block b such that, for every (in size, product), the rows of product(X) come out bitwise the
    same in products of b, 2b, ... rows at any offset; None if no block does (then outputs depend on the batch)."""
    gen = torch.Generator().manual_seed(0)
    for b in blocks:
        if all(_row_exact(k, product, b, trials, gen, device, dtype) for k, product in products):
            return b
    return None


def _row_exact(k: int, product: Callable, block: int, trials: int, gen, device: str, dtype: torch.dtype) -> bool:
    x = torch.randn(block * (trials + 1), k, generator=gen).to(device, dtype)
    whole = product(x)
    for t in range(1, trials + 1):
        for start in (0, block):  # products of t blocks, at two offsets, against the rows of one big product
            part = slice(start, start + block * t)
            if not torch.equal(product(x[part]), whole[part]):
                return False
    return True


@contextmanager
def _one_thread():
    """Torch on one thread inside: preparing the weights is copies, and torch's threads wait on each other on a
    busy machine (0.5 s on one thread against 3.7-5 s on two at load 5, 2 cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class Sequence:
    """One request's state in the model: its key/value cache ([layers, 2, kv_heads, capacity, head_dim]), how
    many positions of it are filled, the tokens to feed at its next step, and whether it has had its first."""
    cache: torch.Tensor
    length: int = 0
    pending: list[int] = field(default_factory=list)
    started: bool = False


class Llama:
    def __init__(self, shape: Shape, tensors: dict[str, torch.Tensor], device: str = "cpu",
                 q4_1: dict[str, Q4_1] | None = None):
        self.shape, self.device, self.dtype = shape, device, compute_dtype(device)
        late = q4_1 is not None and int4.available(device, self.dtype) and all(
            f"blk.{i}.{name}.weight" in q4_1 for i in range(shape.layers) for name in _MATRICES)
        with _one_thread():
            t = {name: w.to(device) for name, w in tensors.items()}
            self.embed = t["token_embd.weight"]
            self.head = t.get("output.weight", self.embed).to(self.dtype)  # tied when the file has no output matrix
            self.final_norm = t["output_norm.weight"]
            self.blocks = [self._block(t, f"blk.{i}.") for i in range(shape.layers)]
            self.late = [self._late(q4_1, f"blk.{i}.") for i in range(shape.layers)] if late else None
        d = shape.head_dim
        inv = 1.0 / (shape.rope_base ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        angles = torch.outer(torch.arange(shape.context, dtype=torch.float64), inv)
        self.cos = angles.cos().float().repeat_interleave(2, dim=-1).to(device)
        self.sin = (angles.sin().float()[..., None] * torch.tensor([-1.0, 1.0])).flatten(-2).to(device)
        linear = [(w.shape[1], lambda x, w=w: F.linear(x, w)) for w in (*self.blocks[0][1:3], *self.blocks[0][4:])]
        self.block = row_block(linear + [(shape.hidden, lambda x: F.linear(x, self.head))], device, self.dtype)
        # int4 products for the rows of a sequence's later steps, where they are row-exact
        self.late_block = row_block([(w.columns, w) for w in self.late[0]], device, self.dtype) if late else None
        self.late = self.late if self.late_block is not None else None

    def _block(self, t: dict, prefix: str) -> tuple:
        """One layer's weights: its two norms (float32) and, in the compute dtype, q, k and v as one matrix, the
        output matrix, gate and up as one matrix, and down (fewer, larger products per step)."""
        w = {name: t[prefix + name + ".weight"] for name in ("attn_norm", "ffn_norm", *_MATRICES)}
        cast = lambda *names: torch.cat([w[n] for n in names]).to(self.dtype)  # noqa: E731
        return (w["attn_norm"], cast("attn_q", "attn_k", "attn_v"), cast("attn_output"), w["ffn_norm"],
                cast("ffn_gate", "ffn_up"), cast("ffn_down"))

    @staticmethod
    def _late(q4_1: dict[str, Q4_1], prefix: str) -> tuple:
        """One layer's matrices as `_block` groups them, packed for the int4 products."""
        packed = lambda *names: int4.pack([q4_1[prefix + n + ".weight"] for n in names])  # noqa: E731
        return (packed("attn_q", "attn_k", "attn_v"), packed("attn_output"), packed("ffn_gate", "ffn_up"),
                packed("ffn_down"))

    def new_sequence(self, capacity: int) -> Sequence:
        s = self.shape
        return Sequence(torch.empty(s.layers, 2, s.kv_heads, capacity, s.head_dim, device=self.device))

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        """x with zero rows appended up to a multiple of the row block."""
        b = self.block or 1
        return torch.cat([x, x.new_zeros(-len(x) % b, x.shape[1])])

    def _linear(self, x: torch.Tensor, w: torch.Tensor, late: int4.Int4 | None = None, split: int = 0
                ) -> torch.Tensor:
        """x @ w.T in the compute dtype, as float32: rows from `split` on by `late` (the same matrix in int4)
        where given."""
        x = x.to(self.dtype)
        if late is None or split == len(x):
            return F.linear(x, w).float()
        if split == 0:
            return late(x).float()
        return torch.cat([F.linear(x[:split], w), late(x[split:])]).float()

    def _causal(self, first: int, n: int) -> torch.Tensor | None:
        """The attention mask of positions first .. first+n-1 over positions 0 .. first+n-1 (None for one)."""
        return torch.ones(n, first + n, dtype=torch.bool, device=self.device).tril(first) if n > 1 else None

    def _norm(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (self.shape.hidden,), w, self.shape.rms_eps)

    @staticmethod
    def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Adjacent pairs (even, odd) turned to (even cos - odd sin, odd cos + even sin): `cos` holds each angle's
        cosine twice, `sin` its sine as (-sin, sin), so this is x cos + (x with each pair swapped) sin."""
        return x * cos + x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2) * sin

    def _attend(self, cache: torch.Tensor, q: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """One piece's attention output [n, hidden] for its queries q [n, heads, d] (already scaled by 1/sqrt(d)),
        the last n of the positions in its sequence's cache [2, kv_heads, positions, d]; `mask` [n, positions]
        (causal) where n > 1."""
        s = self.shape
        n, keys, values = q.shape[0], cache[0], cache[1]
        if n > 1:
            out = F.scaled_dot_product_attention(q.transpose(0, 1)[None], keys[None], values[None], attn_mask=mask,
                                                 scale=1.0, enable_gqa=True)[0]
            return out.transpose(0, 1).reshape(n, s.hidden)
        group = s.heads // s.kv_heads  # one query: the heads that share a key/value head as its queries
        out = F.scaled_dot_product_attention(q.view(1, s.kv_heads, group, s.head_dim), keys[None], values[None],
                                             scale=1.0)
        return out.view(1, s.hidden)

    @torch.inference_mode()
    def step(self, sequences: list[Sequence]) -> torch.Tensor:
        """Feed every sequence its `pending` tokens (appended to its cache): at its first step its prompt, from
        where its cache ends; later its last sampled token and those its grammar forces after it. The logits
        after each sequence's last fed token, [len(sequences), vocab] float32 on the CPU.

        The rows of first steps come first, padded to the row block, then those of later steps, padded to the
        int4 products' row block (`late`, where the machine has them; else they join the first ones)."""
        s = self.shape
        d, heads, kv = s.head_dim, s.heads, s.kv_heads
        starts, tokens, positions, split = {}, [], [], 0
        for late, block in ((False, self.block or 1), (True, self.late_block)):
            for i, seq in enumerate(sequences):
                if (self.late is not None and seq.started) == late:
                    starts[i] = len(tokens)
                    tokens += seq.pending
                    positions += range(seq.length, seq.length + len(seq.pending))
            pad = [0] * (-(len(tokens) - split) % (block or 1))  # the padding rows are never read back
            tokens, positions = tokens + pad, positions + pad
            split = split if late else len(tokens)
        x = self.embed[torch.tensor(tokens, device=self.device)]
        positions = torch.tensor(positions, device=self.device)
        cos, sin = self.cos[positions][:, None, :], self.sin[positions][:, None, :]  # [rows, 1, head_dim]
        qk, scale = (heads + kv) * d, d ** -0.5
        spans = [slice(starts[i], starts[i] + len(seq.pending)) for i, seq in enumerate(sequences)]  # their rows
        pieces = sorted(((seq, slice(rows.start + at - seq.length, rows.start + at - seq.length + n), at + n,
                          self._causal(at, n)) for seq, rows in zip(sequences, spans)
                         for at, n in chunks(seq.length, len(seq.pending))), key=lambda piece: piece[1].start)
        layout, row = [], 0  # in row order: (sequence, its rows, end, mask) of each piece, zeros for padding rows
        for piece in pieces:
            layout += [x.new_zeros(piece[1].start - row, s.hidden)] if piece[1].start > row else []
            layout.append(piece)
            row = piece[1].stop
        layout += [x.new_zeros(len(x) - row, s.hidden)] if len(x) > row else []
        for layer, (an, wqkv, wo, fn, wgu, wd) in enumerate(self.blocks):
            late = self.late[layer] if self.late is not None else (None,) * 4
            qkv = self._linear(self._norm(x, an), wqkv, late[0], split)
            rotated = self._rotate(qkv[:, :qk].view(len(x), heads + kv, d), cos, sin)
            q, k = rotated[:, :heads] * scale, rotated[:, heads:]
            v = qkv[:, qk:].view(len(x), kv, d)
            torch._foreach_copy_([seq.cache[layer, i, :, seq.length:seq.length + len(seq.pending)]
                                  for seq in sequences for i in (0, 1)],
                                 [t[rows].transpose(0, 1) for rows in spans for t in (k, v)])
            parts = [self._attend(item[0].cache[layer, :, :, :item[2]], q[item[1]], item[3])
                     if isinstance(item, tuple) else item for item in layout]
            x = x + self._linear(torch.cat(parts), wo, late[1], split)
            gate, up = self._linear(self._norm(x, fn), wgu, late[2], split).chunk(2, dim=-1)
            x = x + self._linear(F.silu(gate) * up, wd, late[3], split)
        last = torch.tensor([rows.stop - 1 for rows in spans], device=self.device)
        for seq in sequences:
            seq.length += len(seq.pending)
            seq.pending, seq.started = [], True
        h = self._padded(self._norm(x[last], self.final_norm))
        return self._linear(h, self.head)[:len(sequences)].cpu()
