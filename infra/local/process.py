"""Background processes of the local stack: start detached, remember the pid, stop, tail the log."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from streams.core.errors import PortBusyError


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, or a note that it does not exist."""
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


@dataclass(frozen=True)
class ManagedProcess:
    """One service process: its pid file and log live in the state folder."""

    name: str
    run_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of our running process, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if not _alive(pid):
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def start(self, command: list[str], ports: list[int], env: dict[str, str] | None = None) -> int:
        """Start the command detached (own session, output to the log); refuse when a port is taken."""
        for port in ports:
            if port_open(port):
                raise PortBusyError(
                    f"{self.name}: port {port} on 127.0.0.1 is already in use by another process. "
                    f"Stop that process (`ss -ltnp | grep :{port}` shows it) or configure another port "
                    f"(LEPTON_LOCAL__*_PORT)."
                )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(command)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        self.pid_file.write_text(str(proc.pid))
        return proc.pid

    def stop(self, timeout_s: float = 60.0) -> bool:
        """SIGTERM to the process group, wait, then SIGKILL; True when a process was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        stop_group(pid, timeout_s)
        self.pid_file.unlink(missing_ok=True)
        return True

    def rss_mb(self) -> float | None:
        """Resident memory of the process in MiB, or None when not running."""
        pid = self.pid()
        try:
            return psutil.Process(pid).memory_info().rss / 2**20 if pid is not None else None
        except psutil.NoSuchProcess:
            return None


def stop_group(pid: int, timeout_s: float) -> None:
    """SIGTERM the process group led by `pid` (a session of its own), then SIGKILL what is left after the timeout."""
    try:
        leader = psutil.Process(pid)
        group = [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:  # not a group leader after all: signal the processes themselves
            for process in group:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.send_signal(sig)
        _, alive = psutil.wait_procs(group, timeout=timeout_s if sig == signal.SIGTERM else None)
        if not alive:
            return


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far; None when it is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return None
    return times.user + times.system


def host_busy_seconds() -> float:
    """CPU time all cores of the host have spent outside idle and I/O wait so far."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0) - getattr(times, "guest", 0.0) - getattr(
        times, "guest_nice", 0.0)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not: it is reaped if it is our child)."""
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return True
    except psutil.NoSuchProcess:
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return False
