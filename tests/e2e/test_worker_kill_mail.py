"""The worker is killed (SIGKILL) in the middle of sending an agent's reply: the receiving SMTP
server has the whole message but has not said "250 accepted" yet, so the worker has not
recorded the delivery. What is guaranteed, and proven here with real worker processes:

- the mail is not lost: once the dead worker's lease on the job runs out, a new worker sends it;
- the recipient never gets two different messages: every try carries the same Message-ID, so
  the receiving side (which may hold two copies, as here) drops the copy by Message-ID;
- once a delivery is recorded as sent, a rerun of its job (a worker that died after sending
  and recording but before finishing the job) sends nothing at all.

The lease (five minutes in production) is expired by moving the dead worker's claim time back,
rather than by waiting.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from server import jobs
from server.accounts import passwords
from server.accounts.auth import utcnow
from server.channels.email import outbound
from server.channels.email.outbound_tables import MailDelivery
from server.desk import services
from server.jobs import Job
from server.settings import ROOT
from tests.channels.outbound_smtp import RecordingSmtpServer, recording_smtp_server
from tests.factories import make_user

TIMEOUT_SECONDS = 60.0


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def start_worker(server: RecordingSmtpServer, log: Path) -> subprocess.Popen[bytes]:
    """`python -m server worker` on the tests' database, sending to the recording server."""
    env = {**os.environ, "SMTP_URL": f"smtp://127.0.0.1:{server.port}", "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as handle:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
            [sys.executable, "-m", "server", "worker"], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


async def wait_until(check: Callable[[], object], what: str, log: Path) -> None:
    deadline = asyncio.get_running_loop().time() + TIMEOUT_SECONDS
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:]) if log.exists() else ""
            pytest.fail(f"timed out waiting for {what}\n--- worker log ---\n{tail}")
        await asyncio.sleep(0.05)


async def delivery(ticket_id: int) -> dict:
    row = await MailDelivery.select().where(MailDelivery.ticket == ticket_id).first()
    assert row is not None
    return row


async def mail_job() -> dict:
    row = await Job.select().where(Job.kind == outbound.KIND).first()
    assert row is not None
    return row


async def test_worker_killed_mid_send_delivers_one_message_id(tmp_path: Path) -> None:
    customer = await make_user(name="Kim Customer", email="kim@customer.example")
    agent = await make_user("agent", name="Ada Agent")
    ticket_id = await services.open_ticket(customer, "Export fails", "It stops at 10%.", notify=False)
    log = tmp_path / "worker.log"
    processes: list[subprocess.Popen[bytes]] = []
    with recording_smtp_server() as server:
        try:
            server.hold_seconds = TIMEOUT_SECONDS  # store the message, hold back the "250 accepted"
            await services.add_reply(agent, ticket_id, "Fixed in 2.4.1; please update.")
            processes.append(start_worker(server, log))
            await wait_until(lambda: server.messages(customer.email), "the server to receive the mail", log)

            os.kill(processes[0].pid, signal.SIGKILL)  # the worker dies before hearing back
            processes[0].wait(timeout=10)
            row, job = await delivery(ticket_id), await mail_job()
            assert row["status"] == "queued" and job["status"] == jobs.RUNNING

            # Later: the dead worker's lease has run out; the server answers promptly again.
            await Job.update({Job.locked_at: utcnow() - jobs.LEASE - timedelta(seconds=1)}).where(Job.id == job["id"])
            server.hold_seconds = 0
            processes.append(start_worker(server, log))

            async def sent() -> bool:
                return (await delivery(ticket_id))["status"] == "sent" and (await mail_job())["status"] == jobs.DONE

            await wait_until(sent, "the retried delivery to be recorded as sent", log)
            copies = server.messages(customer.email)
            assert len(copies) == 2  # the copy the dead worker sent and the retry
            assert {str(c.message["Message-ID"]) for c in copies} == {row["message_id"]}
            assert all(c.rcpt_tos == [customer.email] for c in copies)
            assert (await delivery(ticket_id))["attempts"] == 2

            # The worker dies after recording "sent" but before the job is done: the job runs
            # again and sends nothing.
            await Job.update(
                {Job.status: jobs.RUNNING, Job.locked_at: utcnow() - jobs.LEASE - timedelta(seconds=1)}
            ).where(Job.id == job["id"])

            async def rerun_done() -> bool:
                return (await mail_job())["status"] == jobs.DONE

            await wait_until(rerun_done, "the rerun of the finished job", log)
            assert (await mail_job())["attempts"] == 3
            assert len(server.messages(customer.email)) == 2
            assert "was sent already" in log.read_text(errors="replace")
        finally:
            server.hold_seconds = 0
            for process in processes:
                stop(process)
