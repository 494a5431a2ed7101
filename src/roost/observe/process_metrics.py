"""Process and system metrics for ``/metrics``: CPU, memory, open files, threads, and the
disk the Roost home uses. Read at scrape time (psutil), except the home's size, which
walks the directory and is therefore cached for ``du_ttl_s``."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from roost.observe.metrics import REGISTRY


class ProcessCollector(Collector):
    def __init__(self, home: Path, du_ttl_s: float = 60.0) -> None:
        self.home = home
        self.du_ttl_s = du_ttl_s
        self._process = psutil.Process()
        self._du: tuple[float, int] = (0.0, 0)
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        process = self._process
        with process.oneshot():
            times = process.cpu_times()
            memory = process.memory_info()
            threads = process.num_threads()
            fds = process.num_fds() if hasattr(process, "num_fds") else len(process.open_files())
        yield CounterMetricFamily(
            "roost_process_cpu_seconds", "CPU time of this process (user + system)",
            value=times.user + times.system,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "roost_process_resident_memory_bytes", "Resident memory of this process",
            value=memory.rss,
        )  # fmt: skip
        yield GaugeMetricFamily("roost_process_open_fds", "Open file descriptors", value=fds)
        yield GaugeMetricFamily("roost_process_threads", "Threads of this process", value=threads)
        system = psutil.virtual_memory()
        yield GaugeMetricFamily(
            "roost_system_memory_available_bytes", "Memory available to start new work",
            value=system.available,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "roost_system_memory_total_bytes", "Physical memory", value=system.total
        )
        load1, _, _ = os.getloadavg()
        yield GaugeMetricFamily("roost_system_load1", "1-minute load average", value=load1)
        yield GaugeMetricFamily("roost_system_cpus", "Logical CPUs", value=psutil.cpu_count() or 0)
        if self.home.exists():
            disk = shutil.disk_usage(self.home)
            yield GaugeMetricFamily(
                "roost_home_disk_free_bytes", "Free space on the home's file system",
                value=disk.free,
            )  # fmt: skip
            yield GaugeMetricFamily(
                "roost_home_used_bytes", "Bytes of files under the Roost home (cached)",
                value=self.home_bytes(),
            )  # fmt: skip

    def home_bytes(self) -> int:
        with self._lock:
            taken, size = self._du
            if time.monotonic() - taken < self.du_ttl_s and taken:
                return size
            size = _tree_size(self.home)
            self._du = (time.monotonic(), size)
            return size


def _tree_size(root: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                continue  # removed while walking
    return total


_installed: ProcessCollector | None = None


def install(home: Path) -> ProcessCollector:
    """Serve the process collector at /metrics (once per process; later homes replace it)."""
    global _installed
    if _installed is not None:
        REGISTRY.unregister(_installed)
    _installed = ProcessCollector(home)
    REGISTRY.register(_installed)
    return _installed
