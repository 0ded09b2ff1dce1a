"""Managed processes: pid files, stop, and a clear refusal when a port is taken."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from infra.local.process import ManagedProcess, cpu_seconds, host_busy_seconds, port_open, tail
from streams.core.errors import PortBusyError


def test_start_refuses_a_busy_port(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PortBusyError, match=f"port {port}"):
            ManagedProcess("probe", tmp_path).start(["sleep", "30"], [port])


def test_start_records_pid_and_stop_ends_the_process(tmp_path) -> None:
    process = ManagedProcess("sleeper", tmp_path)
    pid = process.start(["sleep", "30"], [])
    assert process.pid() == pid
    assert process.stop(timeout_s=5)
    assert process.pid() is None
    assert not process.pid_file.exists()
    assert process.stop() is False  # idempotent


def test_stale_pid_file_is_ignored(tmp_path) -> None:
    process = ManagedProcess("ghost", tmp_path)
    process.pid_file.write_text("999999")
    assert process.pid() is None


def test_tail_of_missing_log_says_so(tmp_path) -> None:
    assert "no log" in tail(tmp_path / "absent.log")


def test_port_open_on_a_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert not port_open(port)


def test_cpu_seconds_count_a_process_busy_time_and_the_host_busy_time_includes_it() -> None:
    host_before, own_before = host_busy_seconds(), cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    own_used = cpu_seconds(os.getpid()) - own_before
    assert 0.25 <= own_used <= 1.0
    assert host_busy_seconds() - host_before >= own_used - 0.02  # ticks: 10 ms each


def test_cpu_seconds_of_a_finished_process_is_none() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    assert cpu_seconds(child.pid) is None
