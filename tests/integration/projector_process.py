"""A real ``ricochet projector`` process serving HTTP, for tests of what it serves."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from ricochet.workers.settings import Settings

REPO = Path(__file__).resolve().parents[2]


class ProjectorProcess:
    """``ricochet --log-json projector`` with its log in a file; ``base`` once it serves."""

    def __init__(self, settings: Settings, directory: Path, *options: str, **env: str) -> None:
        self.log = directory / "projector.log"
        environment = {
            **os.environ,
            "RICOCHET_AMQP_URL": settings.amqp_url,
            "RICOCHET_NAMESPACE": settings.namespace,
            **env,
        }
        store = str(directory / "projection.sqlite3")
        command = [sys.executable, "-m", "ricochet", "--log-json", "projector", "--store", store]
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [*command, *options],
            cwd=REPO,
            env=environment,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self.base = ""

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def _served(self) -> str | None:
        """The base URL its ``projector.http`` line names (the port it bound)."""
        for line in self.text().splitlines():
            if '"projector.http"' in line:
                url = str(orjson.loads(line)["url"])
                return url.removesuffix("/openapi.json")
        return None

    async def serving(self, timeout: float = 60.0) -> ProjectorProcess:
        deadline = time.monotonic() + timeout
        while (base := self._served()) is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"projector did not serve:\n{self.text()[-3000:]}")
            await asyncio.sleep(0.1)
        self.base = base
        return self

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log_file.close()
