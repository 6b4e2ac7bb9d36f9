"""Cube's "Continue wait": a slow query keeps running between polls instead of holding the request.

Cube's clients send a query; if the answer is not ready within `wait_s` the server answers HTTP 200
`{"error": "Continue wait"}` and the client sends the same query again. The running job is keyed by
the normalized query and the caller's identity, so the re-poll finds it and gets its result (or its
error) once ready. Jobs are bounded in number; one nobody polls for `abandon_s` is cancelled in the
engine and forgotten, and so is a finished result nobody came back for.

    jobs = CubeJobs(wait_s=5)
    outcome = await jobs.poll(key, lambda ticket: run_in_pool(..., ticket))   # result or CONTINUE_WAIT
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from canon.compiler.errors import WarehouseError

from .warehouses.base import QueryTicket

CONTINUE_WAIT = object()  # the marker poll() returns while the job still runs
DEFAULT_WAIT_S = 5.0  # Cube's default continueWaitTimeout
WAIT_ENV = "CANON_CUBE_CONTINUE_WAIT_S"
MAX_JOBS = 64


class TooManyJobsError(WarehouseError):
    code = "too_many_queries"
    http_status = 503


@dataclass
class Job:
    task: asyncio.Future
    ticket: QueryTicket
    polled: float


class CubeJobs:
    def __init__(self, wait_s: float = DEFAULT_WAIT_S, *, abandon_s: float | None = None, max_jobs: int = MAX_JOBS):
        self.wait_s = wait_s
        self.abandon_s = abandon_s if abandon_s is not None else max(10.0, 3 * wait_s)
        self.max_jobs = max_jobs
        self._jobs: dict[str, Job] = {}

    @classmethod
    def from_env(cls) -> "CubeJobs":
        """`CANON_CUBE_CONTINUE_WAIT_S` (seconds, default Cube's 5) sets how long a request waits."""
        raw = os.environ.get(WAIT_ENV)
        try:
            wait = float(raw) if raw else DEFAULT_WAIT_S
        except ValueError:
            wait = DEFAULT_WAIT_S
        return cls(max(0.0, wait))

    def __len__(self) -> int:
        return len(self._jobs)

    async def poll(self, key: str, start: Callable[[QueryTicket], Awaitable[Any]]) -> Any:
        """The job's result (raising its error) if it ends within wait_s, else CONTINUE_WAIT."""
        job = self._jobs.get(key)
        if job is None:
            if len(self._jobs) >= self.max_jobs:
                raise TooManyJobsError(f"{len(self._jobs)} Cube queries are already running on this server",
                                       hint="retry shortly")
            ticket = QueryTicket()
            job = Job(asyncio.ensure_future(start(ticket)), ticket, time.monotonic())
            self._jobs[key] = job
            asyncio.ensure_future(self._watch(key, job))
        job.polled = time.monotonic()
        done, _ = await asyncio.wait({job.task}, timeout=self.wait_s)
        job.polled = time.monotonic()
        if not done:
            return CONTINUE_WAIT
        self._forget(key, job)
        return job.task.result()

    def _forget(self, key: str, job: Job) -> None:
        if self._jobs.get(key) is job:
            del self._jobs[key]

    async def _watch(self, key: str, job: Job) -> None:
        """Cancel a job nobody polls any more; drop a finished result nobody fetched."""
        while self._jobs.get(key) is job:
            await asyncio.sleep(min(1.0, self.abandon_s / 4))
            if time.monotonic() - job.polled <= self.abandon_s:
                continue
            self._forget(key, job)
            if not job.task.done():
                job.ticket.cancel("cancelled")
                job.task.cancel()
            elif not job.task.cancelled():
                job.task.exception()  # retrieved, so asyncio does not log it as never seen

    def cancel_all(self) -> None:
        for key, job in list(self._jobs.items()):
            self._forget(key, job)
            job.ticket.cancel("cancelled")
            job.task.cancel()
