"""Health checks of the local stack's services, where no server is needed to check them."""

from __future__ import annotations

from infra.local.services import producer_id_refused
from streams.tools.worker_process import free_port


def test_kafka_is_not_healthy_until_it_grants_producer_ids() -> None:
    # Nothing listens on the port: no id, and the reason says so (the running stack's path is in e2e/test_cli_stack).
    reason = producer_id_refused(f"127.0.0.1:{free_port()}", timeout_s=0.5)
    assert reason is not None and reason.startswith("no producer id granted yet")
