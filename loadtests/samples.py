"""Every request of a load run, as it happened: start time, endpoint, response time,
outcome.

Locust's own statistics are cumulative (or over a sliding window), so they cannot give the
percentiles of one step with its warm-up left out, and its CSV misses the last second's
requests. With V5_SAMPLES_DIR set, each locust process appends one CSV line per request to
its own file there: the capacity runner cuts the lines into steps, the smoke run counts
failures in them. The file is written through a large buffer, which costs the load generator
far less than the request itself.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True, slots=True)
class Sample:
    started: float  # Unix time the request was sent
    name: str
    response_ms: float
    ok: bool


class SampleRecorder:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._file: IO[str] | None = None
        self._writer: Any = None

    def record(
        self,
        name: str,
        response_time: float,
        exception: BaseException | None,
        start_time: float,
        **_: Any,
    ) -> None:
        if self._writer is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"samples-{os.getpid()}.csv"
            self._file = path.open("a", newline="", buffering=1 << 20)
            self._writer = csv.writer(self._file)
        self._writer.writerow(
            (f"{start_time:.6f}", name, f"{response_time:.3f}", 0 if exception else 1)
        )

    def flush(self, **_: Any) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self, **_: Any) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._writer = None


def record_requests_when_asked(events: Any) -> None:
    """Start recording in this locust process if V5_SAMPLES_DIR is set; `events` is locust's
    `locust.events` (passed in, so that this module can be imported without locust's
    monkey-patching)."""
    directory = os.environ.get("V5_SAMPLES_DIR")
    if not directory:
        return
    recorder = SampleRecorder(Path(directory))
    events.request.add_listener(recorder.record)
    events.test_stop.add_listener(recorder.flush)
    events.quitting.add_listener(recorder.close)


def read_samples(directory: Path) -> Iterator[Sample]:
    for path in sorted(directory.glob("samples-*.csv")):
        with path.open(newline="") as handle:
            for started, name, response_ms, ok in csv.reader(handle):
                yield Sample(float(started), name, float(response_ms), ok == "1")
