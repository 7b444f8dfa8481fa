"""Starting a real hub binary for the tests: ``SSEHUB_BIN`` (default the workspace's
``target/debug/ssehub``, built with cargo when missing) on an ephemeral port."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import List, Optional

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
WAIT = 10.0


def hub_binary() -> str:
    configured = os.environ.get("SSEHUB_BIN")
    if configured:
        path = Path(configured)
        return str(path if path.is_absolute() else (ROOT / path))
    path = ROOT / "target" / "debug" / "ssehub"
    if not path.exists():
        subprocess.run(["cargo", "build", "-p", "ssehub-cli"], cwd=ROOT, check=True)
    return str(path)


class Hub:
    """One ``ssehub serve`` process; ``restart()`` starts it again on the same port and
    arguments (so the same data directory)."""

    def __init__(self, binary: str, args: List[str], log: Path) -> None:
        self.binary = binary
        self.args = args
        self.log = log
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""
        self.start()

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MERCURE_")}
        env.pop("SSEHUB_CONFIG", None)
        deadline = time.monotonic() + WAIT
        while True:
            command = [self.binary, "serve", "--listen", f"127.0.0.1:{self.port}", *self.args]
            with open(self.log, "ab") as log:
                proc = subprocess.Popen(
                    command, stdout=subprocess.PIPE, stderr=log, env=env, cwd=self.log.parent
                )
            line = proc.stdout.readline().decode().strip()
            if line.startswith("listening on "):
                break
            proc.wait()
            # A restart on a fixed port may race the old socket's release: try again.
            if self.port == 0 or time.monotonic() > deadline:
                raise RuntimeError(f"the hub did not start: {line!r}; see {self.log}")
            time.sleep(0.1)
        self.proc = proc
        self.url = line[len("listening on ") :]
        self.port = int(self.url.rsplit(":", 1)[1])
        # Keep draining standard output so that the hub never blocks on a full pipe.
        threading.Thread(target=proc.stdout.read, daemon=True).start()

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed on the way out."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self) -> None:
        self.kill()
        self.start()

    def subscribers(self, topic: str) -> int:
        return httpx.get(f"{self.url}/topics/{topic}").json()["subscribers"]

    def wait_subscribers(self, topic: str, n: int = 1) -> None:
        deadline = time.monotonic() + WAIT
        while self.subscribers(topic) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {n} subscriber(s) on {topic}")
            time.sleep(0.02)


@pytest.fixture(scope="session")
def binary() -> str:
    return hub_binary()


@pytest.fixture
def start_hub(binary, tmp_path):
    hubs: List[Hub] = []

    def start(*args: str) -> Hub:
        hub = Hub(binary, list(args), tmp_path / f"hub{len(hubs)}.log")
        hubs.append(hub)
        return hub

    yield start
    for hub in hubs:
        hub.kill()


@pytest.fixture
def hub(start_hub):
    """A hub with history in memory and a short reconnect delay."""
    return start_hub("--memory", "--retry", "100")
