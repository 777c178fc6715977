"""Peak memory between two points of an evaluation: CUDA allocations or the process's RSS.

On a CUDA device the peak is torch's max_memory_allocated (tensors only, no allocator cache).
On CPU it is the process's high-water resident set (VmHWM, read by
mematte_d2.utils.process_memory.peak_rss_bytes); Linux lets a process lower VmHWM to its current
RSS by writing "5" to /proc/self/clear_refs, which `reset` does when permitted. Otherwise the
CPU figure is the peak since the process started.
"""

import logging

import torch

from mematte_d2.utils.process_memory import peak_rss_bytes

logger = logging.getLogger(__name__)


def clear_rss_peak() -> bool:
    """Reset this process's VmHWM to its current RSS; False when the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class PeakMemoryMeter:
    """Peak bytes since the last `reset()` on the device a model ran on."""

    def __init__(self):
        self.rss_resettable = True
        self.cuda_devices: set[torch.device] = set()  # those peak_bytes was asked about

    def reset(self) -> None:
        """Start a new peak: on the CUDA devices the model ran on (those ``peak_bytes`` read;
        before any, this process's current device: a DDP rank's own GPU, touching the others
        would create a CUDA context on each) and, when allowed, the RSS peak."""
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            for device in self.cuda_devices or [torch.device("cuda", torch.cuda.current_device())]:
                torch.cuda.reset_peak_memory_stats(device)
        if self.rss_resettable and not clear_rss_peak():
            self.rss_resettable = False
            logger.warning(
                "cannot write /proc/self/clear_refs: CPU peak memory is the process's peak "
                "resident set since it started, not per image"
            )

    def peak_bytes(self, device: torch.device) -> int:
        if device.type == "cuda":
            if device.index is None:
                device = torch.device("cuda", torch.cuda.current_device())
            self.cuda_devices.add(device)
            return int(torch.cuda.max_memory_allocated(device))
        return peak_rss_bytes()
