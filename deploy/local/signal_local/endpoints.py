"""Start, probe and stop the local AWS endpoints on free 127.0.0.1 ports.

kinesalite serves Kinesis (faithful limits and sequence numbers, LevelDB persistence with `path`);
its CLI binds every interface, so it is started through its Node API bound to 127.0.0.1. moto
server serves the Glue Data Catalog, S3 and Athena APIs. Both run as child processes in their own
process groups and are stopped by PID. Clients reach them with the ordinary boto3 calls, selected
by an endpoint URL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

# Started with `node -e`, with NODE_PATH pointing at deploy/local/node_modules.
_KINESALITE_JS = """
const kinesalite = require('kinesalite');
const [port, path, shardLimit] = process.argv.slice(1);
const server = kinesalite({
  path: path || undefined,
  createStreamMs: 20, deleteStreamMs: 20, updateStreamMs: 20,
  shardLimit: Number(shardLimit),
});
server.listen(Number(port), '127.0.0.1', () => console.log('kinesalite ready on ' + port));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
"""

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never let botocore reach for instance metadata (it is not on loopback).
    "AWS_EC2_METADATA_DISABLED": "true",
}


class LocalEndpointError(RuntimeError):
    """A local endpoint could not be started."""


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on 127.0.0.1 right now (each held until all are found)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def repo_root() -> Path | None:
    """The repository root: $SIGNAL_STREAM_ROOT, or the first folder with pants.toml above this
    file or the working directory (`./pants run` works from the repository root)."""
    env = os.environ.get("SIGNAL_STREAM_ROOT")
    if env:
        return Path(env)
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for parent in (start, *start.parents):
            if (parent / "pants.toml").is_file():
                return parent
    return None


def kinesalite_node_modules(*, install: bool = True) -> Path:
    """deploy/local/node_modules with kinesalite installed (running `npm ci` once if needed)."""
    candidates = []
    if os.environ.get("SIGNAL_KINESALITE_NODE_MODULES"):
        candidates.append(Path(os.environ["SIGNAL_KINESALITE_NODE_MODULES"]))
    root = repo_root()
    local = root / "deploy" / "local" if root is not None else None
    if local is not None:
        candidates.append(local / "node_modules")
    for candidate in candidates:
        if (candidate / "kinesalite" / "package.json").is_file():
            return candidate
    npm = shutil.which("npm")
    if install and local is not None and npm and (local / "package-lock.json").is_file():
        import fcntl

        # one installer at a time when several test processes start together
        with open(local / ".npm-install.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (local / "node_modules" / "kinesalite" / "package.json").is_file():
                log.warning("installing kinesalite: npm ci --prefix %s", local)
                subprocess.run(
                    [npm, "ci", "--prefix", str(local), "--no-audit", "--no-fund"],
                    check=False,
                    capture_output=True,
                )
        if (local / "node_modules" / "kinesalite" / "package.json").is_file():
            return local / "node_modules"
    raise LocalEndpointError(
        "kinesalite is not installed: run `npm ci --prefix deploy/local` in the repository "
        "(or set SIGNAL_KINESALITE_NODE_MODULES to a node_modules folder that has it)."
    )


@dataclass
class ManagedProcess:
    """A local server running as a child process in its own process group."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and reap it."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_until_answering(proc: ManagedProcess, probe_path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise LocalEndpointError(
                f"{proc.name} exited with code {proc.process.returncode} while starting:\n"
                f"{_tail(proc.log_path)}"
            )
        try:
            with urllib.request.urlopen(proc.url + probe_path, timeout=2) as response:
                response.read()
            return
        except urllib.error.HTTPError:
            return  # it answered, if only to say the probe was not a valid request
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.1)
    proc.stop()
    raise LocalEndpointError(f"{proc.name} did not answer on {proc.url} within {timeout:.0f}s")


def _spawn(
    name: str, argv: list[str], port: int, log_dir: Path, env: dict[str, str]
) -> ManagedProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{port}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # own process group: stop() takes its children too
        )
    return ManagedProcess(name, f"http://127.0.0.1:{port}", process, log_path)


def start_python_service(
    name: str,
    module: str,
    *,
    port: int,
    env: dict[str, str],
    log_dir: Path,
    probe_path: str = "/",
    timeout: float = 60.0,
) -> ManagedProcess:
    """Run `python -m module` (a Signal Stream service listening on `port`) and wait until it
    answers `probe_path`; the caller stops it."""
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), **env}
    proc = _spawn(name, [sys.executable, "-m", module], port, log_dir, full_env)
    _wait_until_answering(proc, probe_path, timeout)
    log.info("service started", extra={"service": name, "url": proc.url, "pid": proc.pid})
    return proc


def start_kinesalite(
    log_dir: Path, *, data_path: Path | None = None, shard_limit: int = 200, timeout: float = 30.0
) -> ManagedProcess:
    """Start kinesalite on a free loopback port (in memory, or LevelDB at `data_path`)."""
    node = shutil.which("node")
    if node is None:
        raise LocalEndpointError("Node.js is not on PATH; kinesalite needs Node 20+.")
    env = {**os.environ, "NODE_PATH": str(kinesalite_node_modules())}
    port = free_port()
    argv = [node, "-e", _KINESALITE_JS, str(port), str(data_path or ""), str(shard_limit)]
    proc = _spawn("kinesalite", argv, port, log_dir, env)
    _wait_until_answering(proc, "/", timeout)
    log.info("kinesalite started", extra={"url": proc.url, "pid": proc.pid})
    return proc


def start_moto(log_dir: Path, *, timeout: float = 60.0) -> ManagedProcess:
    """Start moto server (Glue, S3, Athena, … APIs) on a free loopback port."""
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = _spawn("moto", argv, port, log_dir, {**os.environ, **FAKE_CREDENTIALS})
    _wait_until_answering(proc, "/moto-api/", timeout)
    log.info("moto server started", extra={"url": proc.url, "pid": proc.pid})
    return proc


@dataclass
class LocalAWS:
    """The running local endpoints; use `local_aws()` to get one that stops itself."""

    kinesis: ManagedProcess | None = None
    moto: ManagedProcess | None = None
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def kinesis_url(self) -> str:
        assert self.kinesis is not None, "kinesalite was not started"
        return self.kinesis.url

    @property
    def moto_url(self) -> str:
        assert self.moto is not None, "moto server was not started"
        return self.moto.url

    def env(self) -> dict[str, str]:
        """Environment variables that point every Signal Stream service at these endpoints."""
        values = dict(FAKE_CREDENTIALS)
        for prefix in ("SIGNAL_PRODUCER_", "SIGNAL_PROCESSOR_", "SIGNAL_CATALOG_", "SIGNAL_API_"):
            if self.kinesis:
                values[f"{prefix}KINESIS_ENDPOINT_URL"] = self.kinesis.url
            if self.moto:
                for service in ("GLUE", "S3", "ATHENA"):
                    values[f"{prefix}{service}_ENDPOINT_URL"] = self.moto.url
        return values

    def stop(self) -> None:
        """Stop every endpoint that was started (in reverse order)."""
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()


@contextlib.contextmanager
def local_aws(
    log_dir: Path,
    *,
    kinesis: bool = True,
    moto: bool = True,
    kinesis_data_path: Path | None = None,
) -> Iterator[LocalAWS]:
    """Run the chosen local endpoints for the duration of the block."""
    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    stack = LocalAWS()
    try:
        if kinesis:
            stack.kinesis = start_kinesalite(log_dir, data_path=kinesis_data_path)
            stack.processes.append(stack.kinesis)
        if moto:
            stack.moto = start_moto(log_dir)
            stack.processes.append(stack.moto)
        yield stack
    finally:
        stack.stop()
