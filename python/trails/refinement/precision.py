"""Training precision: which dtype, if any, the forward pass of training autocasts to.

``[refinement] precision`` is one of :data:`PRECISIONS`:

* ``fp32``: no autocast; training is exactly the float32 loop.
* ``bf16``: the forward pass and the loss run under ``torch.autocast(dtype=torch.bfloat16)``
  (on the CPU, or on a CUDA device that supports bfloat16). Weights, gradients and Adam's state
  stay float32; the backward pass and the optimizer step run outside autocast, as PyTorch
  documents. bfloat16 has float32's exponent range, so no ``GradScaler`` is needed.
* ``auto``: ``bf16`` where it is native, hence faster — a CUDA device with
  ``torch.cuda.is_bf16_supported()``, or a CPU with bfloat16 matrix instructions (x86
  AVX512_BF16 or AMX_BF16, ARM BF16) — and ``fp32`` elsewhere. A CPU without them only emulates
  bfloat16, far slower (a 512×4 epoch: 194 s against 6.5 s in fp32 on an AVX2-only EPYC;
  ``scripts/bench_training_precision.py``).

Evaluation (``trainer.evaluate``) always runs in float32.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from trails.errors import TrailsError
from trails.refinement.settings import PRECISIONS, check_precision

__all__ = ["PRECISIONS", "check_precision", "cpu_has_native_bf16", "resolve_precision"]

# Capability names (torch.cpu.get_capabilities / /proc/cpuinfo flags) of bfloat16 matrix
# instructions: x86 AVX512_BF16 and AMX_BF16, ARM's BF16 extension.
_NATIVE_BF16_CAPABILITIES = ("avx512_bf16", "amx_bf16", "bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bfloat16 matrix instructions (see :data:`_NATIVE_BF16_CAPABILITIES`).

    Reads ``torch.cpu.get_capabilities()`` (torch ≥ 2.9), else the flags of ``/proc/cpuinfo``;
    False when neither can be read."""
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is not None:
        capabilities = get_capabilities()
        return any(capabilities.get(name, False) is True for name in _NATIVE_BF16_CAPABILITIES)
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, ARM
            flags.update(value.split())
    return any(name in flags for name in _NATIVE_BF16_CAPABILITIES)


def resolve_precision(precision: str, device) -> torch.dtype | None:
    """The dtype training on ``device`` autocasts to under ``precision``; None means float32,
    no autocast.

    Args:
        precision: ``auto``, ``fp32`` or ``bf16`` (see the module docstring).
        device: a ``torch.device`` or its name (``"cpu"``, ``"cuda"``, ``"cuda:1"``).

    Returns:
        ``torch.bfloat16`` or None: ``fp32`` → None; ``bf16`` → bfloat16; ``auto`` → bfloat16
        on a CUDA device with ``torch.cuda.is_bf16_supported()`` or a CPU with
        :func:`cpu_has_native_bf16`, else None.

    Raises:
        TrailsError: for an unknown ``precision``; for ``bf16`` on a CUDA device without
            bfloat16 support, or on a device type other than CPU and CUDA.
    """
    check_precision(precision)
    device = torch.device(device)
    if precision == "fp32":
        return None
    if device.type == "cuda":
        with torch.cuda.device(device):  # the device asked about, not the current one
            supported = torch.cuda.is_bf16_supported(including_emulation=precision == "bf16")
    elif device.type == "cpu":
        supported = precision == "bf16" or cpu_has_native_bf16()
    else:
        supported = False
    if supported:
        return torch.bfloat16
    if precision == "bf16":
        raise TrailsError(f"precision bf16 is not supported on {device}",
                          hint="set [refinement] precision to auto or fp32")
    return None
