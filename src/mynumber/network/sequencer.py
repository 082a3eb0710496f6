"""The log sequencer: integrates queued access records into the Merkle tree and signs a new
tree head, at most ``interval`` seconds after they were written (the log's merge delay).

Entries are durable from the moment their exchange commits (they sit in the queue in the same
transaction); the sequencer only makes them part of a signed head. Several processes may run
one each: the log serialises integration itself."""

from __future__ import annotations

import logging
import threading

from mynumber.network.interfaces import AccessLog

log = logging.getLogger(__name__)


class LogSequencer:
    def __init__(self, access_log: AccessLog, interval: float = 1.0) -> None:
        self.access_log = access_log
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="log-sequencer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                while self.access_log.integrate() > 0 and not self._stop.is_set():
                    pass
            except Exception:  # keep sequencing; the queue keeps the entries meanwhile
                log.exception("log integration failed; will retry")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
