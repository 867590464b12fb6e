"""A real OpenTelemetry Collector for tests: rotel (``pip install --pre rotel``), on loopback.

It starts from the shipped ``collector-config/rotel.env`` with only the ports, files and
retry timings overridden, runs in the foreground as our child, and is always stopped::

    with Rotel(exporter_url=bridge.url, workdir=tmp_path) as collector:
        collector.otlp_http_url   # where the app exports
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

CONFIG = Path(__file__).resolve().parent.parent / "collector-config" / "rotel.env"


def binary() -> str:
    try:
        import rotel
    except ImportError:
        pytest.fail("rotel is not installed: pip install --pre rotel (and apt-get install libpython3.11)")
    return os.path.join(os.path.dirname(rotel.__file__), "rotel-agent")


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Rotel:
    def __init__(self, exporter_url: str, workdir: Path, **overrides: str) -> None:
        self.http_port, self.grpc_port = free_port(), free_port()
        self.log_file = workdir / f"rotel-{self.http_port}.log"
        self.env = {
            **os.environ,
            **read_env_file(CONFIG),
            "ROTEL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{self.http_port}",
            "ROTEL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{self.grpc_port}",
            "ROTEL_OTLP_EXPORTER_ENDPOINT": exporter_url,
            "ROTEL_PID_FILE": str(workdir / f"rotel-{self.http_port}.pid"),
            "ROTEL_LOG_FILE": str(self.log_file),
            "ROTEL_BATCH_TIMEOUT": "100ms",
            **overrides,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def otlp_http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> Rotel:
        self.process = subprocess.Popen(
            [binary(), "start"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for _ in range(100):  # bounded: up to ~10 s
            if self.process.poll() is not None:
                raise RuntimeError(f"rotel exited at start: {self.process.stderr.read().decode()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.http_port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("rotel did not open its OTLP/HTTP port")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process.stderr.close()
        self.process = None

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

    def __enter__(self) -> Rotel:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
