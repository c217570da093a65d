"""A worker killed while a webhook is in flight: the event is sent again with the same id.

A real worker process posts to a real receiver that holds its answer, so the delivery is
mid-request when the worker gets SIGKILL. The job stays `running` under the dead worker's
lease; once the lease has run out (aged here instead of waiting five minutes) a new worker
takes the job over and delivers it. Delivery is at least once with a stable
Kizuna-Webhook-Id, which receivers use to drop the duplicate.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from server import jobs
from server.policy import Actor
from server.settings import ROOT
from server.webhooks import services
from server.webhooks.tables import WebhookDelivery
from tests.desk.factories import make_ticket
from tests.e2e.conftest import _stop
from tests.factories import make_user
from tests.webhooks.receiver import running_receiver

WAIT_SECONDS = 30.0


def start_worker(data_dir: Path, log_name: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATA_DIR": str(data_dir), "SECRET_KEY": secrets.token_urlsafe(32), "PYTHONUNBUFFERED": "1"}
    with (data_dir / log_name).open("wb") as log:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
            [sys.executable, "-m", "server", "worker"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )


async def outcomes() -> list[str]:
    rows = await WebhookDelivery.select(WebhookDelivery.outcome).order_by(WebhookDelivery.id)
    return [row["outcome"] for row in rows]


async def test_a_worker_killed_mid_delivery_leads_to_a_redelivery_with_the_same_id(tmp_path: Path) -> None:
    admin: Actor = await make_user("admin")
    customer = await make_user(name="Casey Customer")
    hold = threading.Event()
    with running_receiver(hold=hold) as receiver:
        _endpoint_id, secret = await services.save_endpoint(admin, None, receiver.url, ["ticket.created"], True)
        assert secret
        receiver.secret = secret
        ticket_id = await make_ticket(customer, "Killed mid-flight")
        processes: list[subprocess.Popen[bytes]] = []
        try:
            first = start_worker(tmp_path, "worker-1.log")
            processes.append(first)
            arrived = await asyncio.to_thread(receiver.arrived.wait, WAIT_SECONDS)
            assert arrived, (tmp_path / "worker-1.log").read_text(errors="replace")
            assert await outcomes() == ["sending"]  # the request is out, its answer held back
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
            hold.set()

            job = await jobs.Job.select().where(jobs.Job.kind == services.DELIVER_KIND).first()
            assert job["status"] == jobs.RUNNING and job["attempts"] == 1  # orphaned under the dead worker
            # Five minutes pass: the dead worker's lease on the job runs out.
            await jobs.Job.update({jobs.Job.locked_at: jobs.now() - jobs.LEASE - timedelta(seconds=1)}).where(
                jobs.Job.id == job["id"]
            )

            processes.append(start_worker(tmp_path, "worker-2.log"))
            deadline = time.monotonic() + WAIT_SECONDS
            while "delivered" not in await outcomes():
                assert time.monotonic() < deadline, (tmp_path / "worker-2.log").read_text(errors="replace")
                await asyncio.sleep(0.2)
        finally:
            _stop(processes)

    assert len(receiver.received) == 2
    assert all(r.verified for r in receiver.received)
    ids = {r.webhook_id for r in receiver.received}
    assert len(ids) == 1 and ids.pop().startswith("evt_")
    assert receiver.received[0].body == receiver.received[1].body
    assert receiver.received[1].json["data"]["ticket"]["id"] == ticket_id
    assert await outcomes() == ["interrupted", "delivered"]
    rows = await WebhookDelivery.select(WebhookDelivery.attempt, WebhookDelivery.status_code).order_by(
        WebhookDelivery.id
    )
    assert [(r["attempt"], r["status_code"]) for r in rows] == [(1, None), (2, 200)]
    done = await jobs.Job.select(jobs.Job.status).where(jobs.Job.kind == services.DELIVER_KIND).first()
    assert done["status"] == jobs.DONE
