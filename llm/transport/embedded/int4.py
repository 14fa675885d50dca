"""Weight-only int4 products for the rows of decode steps: Q4_1 matrices (llm.transport.embedded.weights) repacked
for torch's int4 CPU kernel, which has the same groups of 32: a weight is (code - 8) * scale + zero, with Q4_1's
scale and zero = minimum + 8 * scale (in bfloat16, as the kernel takes them; the activations are bfloat16 too).

A decode step multiplies a few rows by every weight once, so it is bound by reading the weights: the layers'
products for one row take 7.8 ms here against 33 ms in bfloat16, 14 against 40 for 4 rows and 22 against 45 for 8
(one core, all 30 layers, one-off timing on the 2-core AVX512-BF16 machine); from 16 rows on bfloat16 is as fast,
and prompts (hundreds of rows) stay on it. The kernel computes each row on its own, so like the bfloat16 products
its rows are probed for exactness at load (llm.transport.embedded.llama.row_block)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .weights import Q4_1

GROUP = 32  # columns per scale and zero: Q4_1's block


def available(device: str, dtype: torch.dtype) -> bool:
    """Whether this torch has the int4 CPU kernel for this device and compute dtype."""
    return device == "cpu" and dtype == torch.bfloat16 and hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu")


@dataclass(frozen=True)
class Int4:
    """A matrix [out, in] packed for the kernel, with its scales and zeros [in / GROUP, out, 2]."""
    packed: torch.Tensor
    scales_zeros: torch.Tensor

    @property
    def columns(self) -> int:
        return self.scales_zeros.shape[0] * GROUP

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x @ W.T for x [rows, in] in bfloat16."""
        return torch.ops.aten._weight_int4pack_mm_for_cpu(x, self.packed, GROUP, self.scales_zeros)


def pack(matrices: list[Q4_1]) -> Int4:
    """The matrices stacked by rows (as one product computes q, k and v, or gate and up), packed."""
    codes = torch.cat([m.codes for m in matrices]).to(torch.int32)
    scales = torch.cat([m.scales for m in matrices])
    zeros = torch.cat([m.mins for m in matrices]) + 8 * scales
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1)
    return Int4(packed, torch.stack([scales, zeros], dim=-1).transpose(0, 1).contiguous().to(torch.bfloat16))
