"""Real-time adjudication of the claims submitted at the same moment, in one engine run.

Claim/$submit stores its claim and asks this adjudicator for the decision. One thread
decides: the claims asked for while it was deciding are decided together, in one
transaction and one engine run (`claims.service.adjudicate_claims`), which costs little
more than deciding one (the engine is columnar; bench/bench_api.py measures the claims a
second). Nobody waits for a batch to fill: a claim asked for while the thread is idle
is decided at once, alone, so a quiet server answers as fast as before, and a busy one
answers many more.

Claims of different submitters are run apart, each submitter's in a transaction of its
own (each run's history names its submitter as the actor). A run that fails is retried
claim by claim (deciding a decided claim again changes nothing), so a claim's failure is
its own: its caller gets the error, the others their decisions.
A claim not decided in time (`decide`'s timeout) stays `received` and is still decided
here; its caller answers `queued`, as the ClaimResponse of any received claim does.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict
from concurrent.futures import Future
from dataclasses import dataclass, field

from sqlalchemy.orm import sessionmaker

from openhmo.claims.service import adjudicate_claims

log = logging.getLogger(__name__)

# A run holds at most this many claims: more would make the first callers of a long
# queue wait for the last ones' families.
MOST_CLAIMS = 64


@dataclass
class _Ask:
    claim_id: str
    actor: str
    done: Future = field(default_factory=Future)


@dataclass
class Runs:
    """What the adjudicator has done since it started: runs and the claims in them."""

    runs: int = 0
    claims: int = 0
    retried: int = 0  # runs that failed and were retried claim by claim
    largest: int = 0


class RealTimeAdjudicator:
    """Decides stored claims for callers that wait, many claims to an engine run."""

    def __init__(self, sessions: sessionmaker, *, most: int = MOST_CLAIMS) -> None:
        self._sessions = sessions
        self._most = most
        self._asks: queue.SimpleQueue[_Ask | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.done = Runs()

    def decide(self, claim_id: str, *, actor: str, timeout: float | None = None) -> bool:
        """Decide the stored claim `claim_id` for `actor`; True once it is decided and
        committed, False if `timeout` seconds passed first (it is still decided later).
        Raises what deciding it raised (e.g. a ClaimError)."""
        ask = _Ask(claim_id, actor)
        self._ensure_started()
        self._asks.put(ask)
        try:
            ask.done.result(timeout)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        """Decide what was asked, then stop the thread."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._asks.put(None)
            thread.join()

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="openhmo-realtime-adjudication", daemon=True
                )
                self._thread.start()

    def _serve(self) -> None:
        while True:
            ask = self._asks.get()
            if ask is None:
                return
            asks, stop = [ask], False
            while len(asks) < self._most:
                try:
                    more = self._asks.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                asks.append(more)
            self._decide(asks)
            if stop:
                return

    def _decide(self, asks: list[_Ask]) -> None:
        try:
            self._run(asks)
        except BaseException as exc:  # the thread must live on; its callers are told
            if len(asks) == 1:
                asks[0].done.set_exception(exc)
                return
            log.warning("a run of %d claims failed (%s); deciding them one by one", len(asks), exc)
            self.done.retried += 1
            for ask in asks:
                self._decide([ask])
            return
        self.done.runs += 1
        self.done.claims += len(asks)
        self.done.largest = max(self.done.largest, len(asks))
        for ask in asks:
            ask.done.set_result(None)

    def _run(self, asks: list[_Ask]) -> None:
        by_actor: dict[str, list[str]] = defaultdict(list)
        for ask in asks:
            if ask.claim_id not in by_actor[ask.actor]:
                by_actor[ask.actor].append(ask.claim_id)
        # A transaction for each submitter: a run locks its families in family order,
        # which two runs in one transaction would not keep (another server process
        # could then wait on them in a circle).
        for actor, claim_ids in by_actor.items():
            with self._sessions() as session, session.begin():
                adjudicate_claims(session, claim_ids, actor=actor)
