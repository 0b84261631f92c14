"""Which device and number format a service computes with: one rule for generator, trainer and
evaluator.

The choice comes from the service's flag (`atomctl serve generator --device cuda:1 --dtype bf16`),
else the environment (ATOM_DEVICE, ATOM_DTYPE: what the compose file and the Kubernetes overlays
set), else "auto" and "fp32". "auto" is the first CUDA device when PyTorch sees one, else the CPU.
Asking for CUDA where there is none is an error that says so, never a silent fall-back to the CPU.

The dtype applies to the language model: the generator holds its T5 in that format, the trainer
runs forward passes under autocast to it (LoRA weights and optimiser state stay float32). The
evaluator's networks always compute in float32 so that metrics compare across machines.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEVICE_ENV = "ATOM_DEVICE"
DTYPE_ENV = "ATOM_DTYPE"
DTYPES = ("fp32", "bf16", "fp16")


def cuda_visible() -> bool:
    """Whether this process may see an NVIDIA GPU, without importing torch: the driver lists one
    and CUDA_VISIBLE_DEVICES does not hide them all. A guess for launch decisions (how many
    processes to start), never for where to compute: that is resolve_compute's."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "x").strip() in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


class DeviceError(ValueError):
    """The asked device or dtype is not available here; the message says what to use instead."""


@dataclass(frozen=True)
class Compute:
    device: str  # "cpu" or "cuda:N", resolved
    dtype: str  # one of DTYPES

    @property
    def torch_device(self):
        import torch

        return torch.device(self.device)

    @property
    def torch_dtype(self):
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.dtype]

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def describe(self) -> dict:
        """Facts for GetInfo and logs: the device, dtype, CPU threads and, on a GPU, its name and
        memory in use."""
        import torch

        out = {"device": self.device, "dtype": self.dtype, "cpu_threads": str(torch.get_num_threads())}
        if self.is_cuda:
            idx = self.torch_device.index or 0
            out["gpu"] = torch.cuda.get_device_name(idx)
            out["gpu_memory_allocated_mib"] = str(round(torch.cuda.memory_allocated(idx) / 2**20))
        return out


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_compute(device: str | None = None, dtype: str | None = None) -> Compute:
    """The flag's value, else the environment's, else auto/fp32, checked against this machine."""
    dev = (device or os.environ.get(DEVICE_ENV) or "auto").strip().lower()
    fmt = (dtype or os.environ.get(DTYPE_ENV) or "fp32").strip().lower()
    if fmt not in DTYPES:
        raise DeviceError(f"unknown dtype {fmt!r}; use one of {', '.join(DTYPES)} (--dtype or {DTYPE_ENV})")
    count = _cuda_count() if dev != "cpu" else 0
    if dev == "auto":
        dev = "cuda:0" if count else "cpu"
    elif dev == "cuda" or dev.startswith("cuda:"):
        if not count:
            import torch

            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise DeviceError(
                f"device {dev!r} was asked for, but PyTorch ({build}) sees no CUDA device here; use --device cpu or auto ({DEVICE_ENV})"
            )
        index = 0 if dev == "cuda" else dev.partition(":")[2]
        if not str(index).isdigit() or int(index) >= count:
            raise DeviceError(f"device {dev!r}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}")
        dev = f"cuda:{int(index)}"
    elif dev != "cpu":
        raise DeviceError(f"unknown device {dev!r}; use auto, cpu, cuda or cuda:N (--device or {DEVICE_ENV})")
    if dev == "cpu" and fmt == "fp16":
        raise DeviceError("fp16 needs a GPU; on the CPU use fp32 (or bf16)")
    if dev.startswith("cuda") and fmt == "bf16":
        import torch

        if not torch.cuda.is_bf16_supported():
            raise DeviceError(f"{dev} does not support bf16; use fp16 or fp32")
    return Compute(dev, fmt)
