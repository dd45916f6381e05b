"""The Cerbos PDP binary from the npm package, run as our child process on loopback ports."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

import httpx

from cityos.embedded.process import ChildProcess, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def cerbos_binary(project_root: Path = PROJECT_ROOT) -> Path:
    system = {"Linux": "linux", "Darwin": "darwin"}.get(platform.system(), platform.system().lower())
    machine = {"x86_64": "x64", "AMD64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine(), platform.machine())
    package = f"cerbos-{system}-{machine}"
    path = project_root / "node_modules" / "@cerbos" / package / package
    if not path.exists():
        raise FileNotFoundError(f"Cerbos binary not found at {path}: run `npm ci` (make does this)")
    return path


def server_config(policy_dir: Path, http_port: int, grpc_port: int) -> str:
    return f"""\
server:
  httpListenAddr: "127.0.0.1:{http_port}"
  grpcListenAddr: "127.0.0.1:{grpc_port}"
  requestLimits:
    maxActionsPerResource: 50
    maxResourcesPerRequest: 50
engine:
  defaultPolicyVersion: "default"
  lenientScopeSearch: true
telemetry:
  disabled: true
auxData:
  jwt:
    disableVerification: true
storage:
  driver: "disk"
  disk:
    directory: "{policy_dir.resolve()}"
    watchForChanges: true
"""


@dataclass
class EmbeddedCerbos:
    policy_dir: Path
    work_dir: Path
    http_port: int = 0
    grpc_port: int = 0
    child: ChildProcess | None = None

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def url(self) -> str:
        return f"grpc://{self.grpc_address}"

    def start(self) -> None:
        self.http_port = self.http_port or free_port()
        self.grpc_port = self.grpc_port or free_port()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config = self.work_dir / "cerbos.yaml"
        config.write_text(server_config(self.policy_dir, self.http_port, self.grpc_port))
        argv = [str(cerbos_binary()), "server", f"--config={config}",
                f"--debug-listen-addr=127.0.0.1:{free_port()}", "--log-level=warn"]
        env = {**os.environ, "CERBOS_NO_TELEMETRY": "1"}  # never phone home
        self.child = ChildProcess("cerbos", argv, log_path=self.work_dir / "cerbos.log", env=env)
        self.child.start()
        self.child.wait_ready(self._healthy)

    def _healthy(self) -> bool:
        try:
            response = httpx.get(f"http://127.0.0.1:{self.http_port}/_cerbos/health", timeout=0.5)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def restart(self) -> None:
        """Start again after the PDP died, on the same ports so that the app's gRPC channel reconnects."""
        assert self.grpc_port, "restart() after start()"
        self.start()

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
