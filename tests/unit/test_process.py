"""Managed processes: pid files, stop, and a clear refusal when a port is taken."""

from __future__ import annotations

import socket

import pytest

from infra.local.process import ManagedProcess, port_open, tail
from streams.errors import PortBusyError


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
