"""Acks before answers: in a burst of Slack requests, answering starts once the burst is acked.

Everything runs on one event loop, so answers started at once (retrieval, prompt, logging, Slack calls) hold up the
acks of the requests that come after them: with 50 mentions at once, the last ones were acked only after the first
ones' answering had taken its turns on the loop (ack p99 6 to 8 times a bare Bolt app's in bench/bot.py). A lone
request's answer starts right after its ack; in a burst (another request came within `quiet_s`), answers wait
until every request is acked and none has come for `quiet_s`, at most `longest_s` (requests that never stop
coming): they lose a few milliseconds, and Slack's acks stay as quick as a bare Bolt app's. bot.server counts the
Slack requests it serves over HTTP (`handling`); Socket Mode acks are not paced.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

QUIET_S = 0.025  # a burst is over once no request has come for this long (its requests come within ms)
LONGEST_S = 1.0  # an answer waits at most this long, even when requests never stop coming


class AcksFirst:
    def __init__(self, quiet_s: float = QUIET_S, longest_s: float = LONGEST_S) -> None:
        self.quiet_s = quiet_s
        self.longest_s = longest_s
        self._in_flight = 0
        self._idle = asyncio.Event()  # set while no request is in flight
        self._idle.set()
        self._arrivals: deque[float] = deque(maxlen=2)  # loop times of the last two requests' arrivals

    @contextmanager
    def handling(self) -> Iterator[None]:
        """Around the handling of one request, until its ack is ready."""
        self._in_flight += 1
        self._idle.clear()
        self._arrivals.append(asyncio.get_running_loop().time())
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def wait(self) -> None:
        """Return once the requests in flight are acked and, in a burst, none has come for `quiet_s`."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.longest_s):
                while True:
                    await self._idle.wait()
                    now = loop.time()
                    if len(self._arrivals) < 2 or self._arrivals[0] < now - self.quiet_s:
                        return  # a lone request: its own ack was the only one to wait for
                    await asyncio.sleep(self._arrivals[-1] + self.quiet_s - now)
        except TimeoutError:
            return
