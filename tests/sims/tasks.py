"""The life every provider simulator shares: submit makes a task, each query moves it on.

:class:`TaskSimulator` holds the order in which a real API answers, written once:

submit  record the body's contract violations; answer an injected fault (before the key is
        checked, as a gateway would); check the key; refuse a body with violations; create
        the task; on ``accept_then_drop`` close the connection after creating it.
query   answer an injected fault unless it acts on the task (``TASK_FAULTS``); check the
        key; find the task; apply the task fault; advance one poll; reply.

A provider module fills in its words (``TERMINAL``, ``DONE``, ``RUNNING``), its routes and
the replies (``_refuse``, ``_new_task``, ``_accepted``, ``_lookup``, ``_query_reply``...).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from tests import media
from tests.sims.base import Clock, Fault, SimServer, drop_connection, recorded

SUBMIT, QUERY = "submit", "query"
ACCEPT_THEN_DROP = Fault("accept_then_drop", "accept_then_drop")

#: Faults every task simulator answers alike: the generic ones, and creating the task but
#: dropping the connection before the answer (submit only).
COMMON_FAULTS: dict[str, Fault] = {**SimServer.FAULTS, "accept_then_drop": ACCEPT_THEN_DROP}


@dataclass
class SimTask:
    """A submitted task. Tests may edit ``polls_until_done`` or ``video`` before polling.

    ``polls_until_done=None`` keeps the task in progress until ``complete``/``fail``.
    Providers subclass it for their own fields and first status word.
    """

    task_id: str
    body: dict[str, Any]
    polls_until_done: int | None
    video: bytes
    status: str = ""
    polls: int = 0
    blob_token: str | None = None


class TaskSimulator(SimServer):
    """A loopback video API whose tasks finish after ``polls_until_done`` queries.

    Read ``submits`` (accepted bodies), ``tasks``, ``requests``, ``violations`` and
    ``download_auth_headers_seen``; drive with ``complete``/``fail``/``inject``.
    """

    API_KEY: ClassVar[str]
    #: How long a signed result URL lives, unless the test says otherwise.
    URL_TTL: ClassVar[float] = 9 * 3600
    TERMINAL: ClassVar[tuple[str, ...]]
    DONE: ClassVar[str]
    #: The word of a task past its first poll (MiniMax overrides ``_progress`` instead).
    RUNNING: ClassVar[str] = ""
    #: Query fault kinds that change the task instead of the reply.
    TASK_FAULTS: ClassVar[frozenset[str]] = frozenset({"task_fail"})

    def __init__(
        self,
        *,
        api_key: str | None = None,
        video: bytes | None = None,
        polls_until_done: int | None = 2,
        clock: Clock = time.time,
        url_ttl: float | None = None,
    ) -> None:
        super().__init__(clock=clock, url_ttl=self.URL_TTL if url_ttl is None else url_ttl)
        self.api_key = self.API_KEY if api_key is None else api_key
        self.video = media.make_mp4() if video is None else video
        self.polls_until_done = polls_until_done
        self.submits: list[dict[str, Any]] = []
        self.tasks: dict[str, Any] = {}

    def urls_with_key(self) -> list[str]:
        """Paths of requests that carried the key in the URL; must stay []: URLs get logged."""
        return [
            r.path
            for r in self.requests
            if self.api_key in r.path or any(self.api_key in v for v in r.query.values())
        ]

    # -- test controls

    def complete(self, task_id: str) -> Any:
        """Finish a task now: the next query says it is done, with a fresh result URL."""
        task = self.tasks[task_id]
        if task.status not in self.TERMINAL:
            task.status = self.DONE
            task.blob_token = self.publish(task.video)
        return task

    def end(self, task_id: str, status: str, **fields: Any) -> Any:
        """Move a task to the terminal ``status`` (setting ``fields``) unless it has ended."""
        task = self.tasks[task_id]
        if task.status not in self.TERMINAL:
            task.status = status
            for name, value in fields.items():
                setattr(task, name, value)
        return task

    # -- handlers

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        body = recorded(request).json
        problems = self._submit_problems(request, body)
        self.violate(SUBMIT, problems)
        fault = self.faults.pop(SUBMIT)
        if fault is not None and fault.kind != "accept_then_drop":
            return await self._answer_fault(request, fault, SUBMIT)
        if denied := self._check_auth(request):
            return denied
        if problems:
            return self._refuse(problems)
        task = self._new_task(request, body)
        self.tasks[task.task_id] = task
        self.submits.append(body)
        if fault is not None:  # accept_then_drop: the task exists, the answer never comes
            return drop_connection(request)
        return self._accepted(task)

    async def _answer_query(
        self, request: web.Request, endpoint: str, task_id: str
    ) -> web.StreamResponse:
        """A query reply for ``task_id``, with the faults queued on ``endpoint``."""
        fault = self.faults.pop(endpoint)
        if fault is not None and fault.kind not in self.TASK_FAULTS:
            return await self._answer_fault(request, fault, endpoint)
        if denied := self._check_auth(request):
            return denied
        task = self._lookup(request, task_id)
        if isinstance(task, web.Response):
            return task
        if fault is not None:
            self._task_fault(task, fault)
        self._advance(task)
        return web.json_response(self._query_reply(task, endpoint))

    def _advance(self, task: Any) -> None:
        """One query's worth of progress."""
        if task.status in self.TERMINAL:
            return
        task.polls += 1
        if task.polls_until_done is not None and task.polls > task.polls_until_done:
            self.complete(task.task_id)
        else:
            self._progress(task)

    def _progress(self, task: Any) -> None:
        """The status of a task still in progress after ``task.polls`` queries."""
        if task.polls > 1:
            task.status = self.RUNNING

    # -- what each provider writes

    def _submit_problems(self, request: web.Request, body: Any) -> list[str]:
        """Everything wrong with a submit request that the real API would refuse."""
        raise NotImplementedError

    def _check_auth(self, request: web.Request) -> web.Response | None:
        """The refusal of a missing or wrong key, or None to go on."""
        raise NotImplementedError

    def _refuse(self, problems: list[str]) -> web.Response:
        """The reply to a body with contract violations."""
        raise NotImplementedError

    def _new_task(self, request: web.Request, body: dict[str, Any]) -> Any:
        """A new task for an accepted body."""
        raise NotImplementedError

    def _accepted(self, task: Any) -> web.Response:
        """The reply to an accepted submit."""
        raise NotImplementedError

    def _lookup(self, request: web.Request, task_id: str) -> Any:
        """The task, or the reply to a query for a task that is not there."""
        raise NotImplementedError

    def _task_fault(self, task: Any, fault: Fault) -> None:
        """Apply a query fault that acts on the task (``TASK_FAULTS``)."""
        raise NotImplementedError

    def _query_reply(self, task: Any, endpoint: str) -> dict[str, Any]:
        """The body of a query reply."""
        raise NotImplementedError
