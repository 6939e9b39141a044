"""What produced a result: software versions, the device, the thread count, the code's commit.

Recorded with every finished level and training (``result.json`` and the results index), so a
number can always be traced to the machine and code that computed it (CPU results are
bit-identical only for the same torch version and thread count).
"""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

import torch

from oneticket import __version__

PACKAGE_DIR = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout oneticket runs from (``-dirty`` with uncommitted changes), or
    None when it is installed from a wheel or git is absent."""
    root = PACKAGE_DIR.parent.parent  # src/oneticket -> the repository
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
                             capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


@functools.lru_cache(maxsize=8)
def device_name(device: str) -> str:
    """``"NVIDIA H100 80GB HBM3 (cuda:0)"``, or the CPU's model name (``"AMD EPYC (cpu)"``)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name(dev)} ({dev})"
    return f"{_cpu_model()} ({dev.type})"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def provenance(device: torch.device | str) -> dict[str, str | int | None]:
    """The record of what is computing on ``device`` now."""
    return {
        "oneticket": __version__,
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "device": device_name(str(device)),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
