"""Loss modules compute in at least fp32 (`at_least_fp32`): half-precision scores are promoted, a float64
model's stay float64 (a numerical reference must not be rounded to fp32 at its last step)."""

import torch


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """`x` promoted to fp32 when it is a narrower float; float32 and float64 as they are."""
    return x.to(torch.promote_types(x.dtype, torch.float32))
