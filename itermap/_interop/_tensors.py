"""Torch tensors as NumPy arrays, for the importers (torch itself is never imported here)."""

from __future__ import annotations

import numpy as np

__all__ = ["tensor_to_numpy"]


def tensor_to_numpy(t) -> np.ndarray:
    """A torch tensor as a NumPy array; bfloat16, which NumPy has no type for, as float32
    (exactly: bfloat16 is float32 with a shorter mantissa), as float16 weights become."""
    t = t.detach().cpu()
    if str(t.dtype) == "torch.bfloat16":
        t = t.float()
    return t.numpy()
