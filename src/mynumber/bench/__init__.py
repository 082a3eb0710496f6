"""Benchmark workloads for ``mynumber bench NAME``.

Each workload is a module here exposing ``run(options: BenchOptions) -> dict`` that returns one
JSON-serialisable object with at least ``per_second``; where the issue names a baseline it also
carries ``baseline_per_second`` and ``ratio``, measured in the same run.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from typing import Any

WORKLOADS = {
    "numbering": "mynumber.bench.numbering",
    "import": "mynumber.bench.import_",
    "jpki-verify": "mynumber.bench.jpki_verify",
    "ocsp": "mynumber.bench.ocsp",
    "log": "mynumber.bench.log",
    "exchange": "mynumber.bench.exchange",
    "portal-api": "mynumber.bench.portal_api",
}


@dataclass
class BenchOptions:
    count: int | None = None
    workers: int | None = None
    database_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }
