"""A llama-architecture decoder over packed rows, written so that a sequence's numbers never depend on the others.

One `step` runs every active sequence's new tokens together: a prompt (prefill) or a few tokens (decode) each,
packed into one [rows, hidden] matrix for every matrix product, with attention done per sequence against its own
key/value cache, in pieces: a sequence's new positions are cut at multiples of CHUNK and each piece attends, in a
call of its own, to the positions up to its end, so a piece is computed the same way whether the positions before it
were fed at this step or earlier (what lets llm.transport.embedded.prefix keep prompt prefixes). On the CPU, BLAS
computes a row of a product the same way whatever the other rows hold, but not whatever their number: one row takes
a matrix-vector path, and small counts other kernels. `step` pads the packed matrix to a multiple of the smallest
block for which this machine's products are row-exact (`row_block`, probed once at load), so a sequence's logits are
bitwise the same alone or in any batch, and sampling (seeded per request) makes the same tokens. Rotary embeddings
are applied to adjacent pairs: GGUF files store q and k permuted for that convention.

Matrix products run in bfloat16 where the hardware has it (`compute_dtype`: AVX512-BF16 or AMX on the CPU, a GPU
that supports it): 2.2-2.6x faster than float32 in a one-off timing on the 2-core AVX512-BF16 machine, since the
weights are read once per step. Norms, rotary embeddings, attention and the residual stream stay float32.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate

import torch
import torch.nn.functional as F

from .weights import Shape

BLOCKS = (4, 8, 16, 32, 64)  # row blocks tried by `row_block`, smallest first
CHUNK = 32  # positions per attention piece: tokens fed together attend in pieces cut at multiples of CHUNK


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


def row_block(sizes: list[tuple[int, int]], device: str = "cpu", dtype: torch.dtype = torch.float32,
              blocks=BLOCKS, trials: int = 6) -> int | None:
    """The smallest block b such that, for every (in, out) size, the rows of X @ W.T come out bitwise the same in
    products of b, 2b, ... rows at any offset; None if no block does (then outputs depend on the batch)."""
    gen = torch.Generator().manual_seed(0)
    for b in blocks:
        if all(_row_exact(k, n, b, trials, gen, device, dtype) for k, n in sizes):
            return b
    return None


def _row_exact(k: int, n: int, block: int, trials: int, gen, device: str, dtype: torch.dtype) -> bool:
    w = torch.randn(n, k, generator=gen).to(device, dtype)
    x = torch.randn(block * (trials + 1), k, generator=gen).to(device, dtype)
    whole = F.linear(x, w)
    for t in range(1, trials + 1):
        for start in (0, block):  # products of t blocks, at two offsets, against the rows of one big product
            part = slice(start, start + block * t)
            if not torch.equal(F.linear(x[part], w), whole[part]):
                return False
    return True


@dataclass
class Sequence:
    """One request's state in the model: its key/value cache ([layers, 2, kv_heads, capacity, head_dim]), how
    many positions of it are filled, and the tokens to feed at its next step."""
    cache: torch.Tensor
    length: int = 0
    pending: list[int] = field(default_factory=list)


class Llama:
    def __init__(self, shape: Shape, tensors: dict[str, torch.Tensor], device: str = "cpu"):
        self.shape, self.device, self.dtype = shape, device, compute_dtype(device)
        t = {name: w.to(device) for name, w in tensors.items()}
        self.embed = t["token_embd.weight"]
        self.head = t.get("output.weight", self.embed).to(self.dtype)  # tied when the file has no output matrix
        self.final_norm = t["output_norm.weight"]
        self.blocks = [self._block(t, f"blk.{i}.") for i in range(shape.layers)]
        d = shape.head_dim
        inv = 1.0 / (shape.rope_base ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        angles = torch.outer(torch.arange(shape.context, dtype=torch.float64), inv)
        self.cos, self.sin = angles.cos().float().to(device), angles.sin().float().to(device)
        sizes = {tuple(w.shape[::-1]) for block in self.blocks for w in block if w.dim() == 2}
        sizes.add(tuple(self.head.shape[::-1]))
        self.block = row_block(sorted(sizes), device, self.dtype)

    def _block(self, t: dict, prefix: str) -> tuple:
        """One layer's weights: its two norms (float32) and, in the compute dtype, q, k and v as one matrix, the
        output matrix, gate and up as one matrix, and down (fewer, larger products per step)."""
        w = {name: t[prefix + name + ".weight"] for name in (
            "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")}
        cast = lambda *names: torch.cat([w[n] for n in names]).to(self.dtype)  # noqa: E731
        return (w["attn_norm"], cast("attn_q", "attn_k", "attn_v"), cast("attn_output"), w["ffn_norm"],
                cast("ffn_gate", "ffn_up"), cast("ffn_down"))

    def new_sequence(self, capacity: int) -> Sequence:
        s = self.shape
        return Sequence(torch.empty(s.layers, 2, s.kv_heads, capacity, s.head_dim, device=self.device))

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        """x with zero rows appended up to a multiple of the row block."""
        b = self.block or 1
        return torch.cat([x, x.new_zeros(-len(x) % b, x.shape[1])])

    def _linear(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x @ w.T in the compute dtype, as float32 (x holds the step's padded rows)."""
        return F.linear(x.to(self.dtype), w).float()

    def _causal(self, first: int, n: int) -> torch.Tensor | None:
        """The attention mask of positions first .. first+n-1 over positions 0 .. first+n-1 (None for one)."""
        return torch.ones(n, first + n, dtype=torch.bool, device=self.device).tril(first) if n > 1 else None

    def _norm(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.shape.rms_eps) * w

    @staticmethod
    def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        even, odd = x[..., 0::2], x[..., 1::2]
        return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)

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
        group = s.heads // s.kv_heads  # query head h reads key/value head h // group
        scores = torch.matmul(q.view(s.kv_heads, group, s.head_dim), keys.transpose(1, 2))
        return torch.matmul(scores.softmax(-1), values).reshape(1, s.hidden)

    @torch.inference_mode()
    def step(self, sequences: list[Sequence]) -> torch.Tensor:
        """Feed every sequence its `pending` tokens (appended to its cache): at its first step its prompt, from
        where its cache ends; later its last sampled token and those its grammar forces after it. The logits
        after each sequence's last fed token, [len(sequences), vocab] float32 on the CPU."""
        s = self.shape
        d, heads, kv = s.head_dim, s.heads, s.kv_heads
        counts = [len(q.pending) for q in sequences]
        tokens = torch.tensor([t for q in sequences for t in q.pending], device=self.device)
        x = self._padded(self.embed[tokens])  # the padding rows are never read back
        padded, pad = len(x), x.new_zeros(len(x) - len(tokens), s.hidden)
        positions = [p for q, n in zip(sequences, counts) for p in range(q.length, q.length + n)]
        positions = torch.tensor(positions + [0] * len(pad), device=self.device)
        cos, sin = self.cos[positions][:, None, :], self.sin[positions][:, None, :]
        qk, scale = (heads + kv) * d, d ** -0.5
        pieces = [(seq, slice(start + at - seq.length, start + at - seq.length + n), at + n, self._causal(at, n))
                  for seq, start in zip(sequences, accumulate([0] + counts))
                  for at, n in chunks(seq.length, len(seq.pending))]  # (sequence, its rows, end, mask)
        for layer, (an, wqkv, wo, fn, wgu, wd) in enumerate(self.blocks):
            qkv = self._linear(self._norm(x, an), wqkv)
            rotated = self._rotate(qkv[:, :qk].view(padded, heads + kv, d), cos, sin)
            q, k = rotated[:, :heads] * scale, rotated[:, heads:]
            v = qkv[:, qk:].view(padded, kv, d)
            for seq, start, n in zip(sequences, accumulate([0] + counts), counts):
                cache = seq.cache[layer, :, :, seq.length:seq.length + n]
                cache[0], cache[1] = k[start:start + n].transpose(0, 1), v[start:start + n].transpose(0, 1)
            parts = [self._attend(seq.cache[layer, :, :, :end], q[rows], mask) for seq, rows, end, mask in pieces]
            x = x + self._linear(torch.cat(parts + [pad]), wo)
            gate, up = self._linear(self._norm(x, fn), wgu).chunk(2, dim=-1)
            x = x + self._linear(F.silu(gate) * up, wd)
        for seq, n in zip(sequences, counts):
            seq.length += n
            seq.pending = []
        last = torch.tensor([end - 1 for end in accumulate(counts)], device=self.device)
        h = self._padded(self._norm(x[last], self.final_norm))
        return self._linear(h, self.head)[:len(sequences)].cpu()
