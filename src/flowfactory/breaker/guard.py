"""The breaker callers go through: ``call``, ``acall`` and the ``guard()`` block.

A ``Breaker`` is the shell around one ``CircuitMachine``: it consults the overrides and the
shared store, takes the lock, raises ``CircuitOpenError`` on a rejection and hands the
machine's transitions to its registry's listeners.

* A rejection raises a fresh ``CircuitOpenError`` (picklable, with the time to retry)
  instead of re-raising purgatory's shared ``OpenedState``, whose traceback grows on every
  call.
* State changes happen under a lock, so one breaker is safe across Prefect's task threads and
  their event loops (purgatory's shared context is not).
* The per-call paths are synchronous and cheap, so the same breaker serves sync tasks and
  coroutines.
* With a ``SharedStore`` (Redis) the fleet's state decides; the local machine is the
  fallback while the store is unreachable.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import ParamSpec, TypeVar

from flowfactory.breaker.machine import CircuitMachine, Permit, Rejection, classify
from flowfactory.breaker.model import (
    BreakerHost,
    BreakerStatus,
    ExceptionMatch,
    Outcome,
    Override,
    SharedAdmission,
    State,
    Transition,
)
from flowfactory.config import CircuitBreakerConfig
from flowfactory.errors import CircuitOpenError

__all__ = ["Breaker"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(slots=True)
class _SharedPermit:
    """A call the shared store admitted, and when (on the breaker's clock)."""

    admission: SharedAdmission
    started: float


# What admission hands to recording: a generation (the fast path), a permit, or None (the
# call is not recorded: breakers disabled, or let through by an override).
_Ticket = int | Permit | _SharedPermit | None


class Breaker:
    """The breaker of one dependency, shared by every caller in the process.

    ``machine`` is the state machine underneath; read it to inspect, change it only through
    the breaker (which holds the lock).
    """

    def __init__(self, machine: CircuitMachine, host: BreakerHost) -> None:
        self.dependency = machine.dependency
        self.machine = machine
        self._host = host
        self._lock = threading.Lock()
        self.rejected = 0

    @property
    def config(self) -> CircuitBreakerConfig:
        """The settings it trips, waits and probes by."""
        return self.machine.config

    @property
    def stale(self) -> int:
        """Outcomes dropped because the circuit moved while their calls ran."""
        return self.machine.stale

    def reconfigure(self, config: CircuitBreakerConfig) -> None:
        """New thresholds and windows; the state and counts stay."""
        with self._lock:
            self.machine.configure(config)

    # ----------------------------------------------------------------------------------------
    # Calling through the breaker

    def call(
        self,
        function: Callable[P, R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Run ``function`` if the circuit admits it; raise ``CircuitOpenError`` if not."""
        with self.guard():
            return function(*args, **kwargs)

    async def acall(
        self,
        function: Callable[P, Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Await ``function(...)`` if the circuit admits it; raise ``CircuitOpenError`` if not."""
        ticket = self._admit()
        try:
            result = await function(*args, **kwargs)
        except BaseException as exc:
            self._record(ticket, exc)
            raise
        self._record(ticket, None)
        return result

    def guard(
        self, *, ignore: ExceptionMatch | None = None, success_on: ExceptionMatch | None = None
    ) -> _Guard:
        """A ``with`` (or ``async with``) block run through the breaker.

        ``ignore``: exceptions that are neither failure nor success (a 404, a bad request).
        ``success_on``: exceptions that prove the dependency is up (they reset the count).
        Exceptions outside ``Exception`` (cancellation, interpreter exit) are always ignored.
        """
        return _Guard(self, ignore, success_on)

    # ----------------------------------------------------------------------------------------
    # Retries

    def allow_retry(self) -> bool:
        """Whether a retry may be spent on this dependency now (not open, budget left)."""
        host = self._host
        override = host.override_for(self.dependency)
        if override is Override.DISABLED or override is Override.FORCED_CLOSED:
            return True
        if override is Override.FORCED_OPEN:
            return False
        if self.state() != "closed":
            return False
        store = host.store
        if store is not None and host.store_healthy():
            try:
                return store.spend_retry(self.dependency)
            except Exception as exc:  # noqa: BLE001 - falls back to this process's budget
                host.store_failed(exc)
        with self._lock:
            return self.machine.spend_retry()

    # ----------------------------------------------------------------------------------------
    # Inspection and control

    def state(self) -> State:
        """The state now (an open circuit whose time is up reads as half-open)."""
        return self.status().state

    def status(self) -> BreakerStatus:
        """A snapshot for display."""
        host = self._host
        override = host.override_for(self.dependency)
        store = host.store
        if store is not None and host.store_healthy():
            try:
                state, shared_override, failures, retry_after = store.status(self.dependency)
            except Exception as exc:  # noqa: BLE001 - shown as local state with a warning
                host.store_failed(exc)
            else:
                return BreakerStatus(
                    self.dependency,
                    state,
                    override or shared_override,
                    failures,
                    retry_after,
                    self.rejected,
                    shared=True,
                )
        with self._lock:
            state, failures, wait = self.machine.status()
        return BreakerStatus(
            self.dependency, state, override, failures, wait, self.rejected, shared=False
        )

    def reset(self) -> None:
        """Closed, no failures, a fresh window and budget (a test's or operator's reset)."""
        with self._lock:
            transitions = self.machine.reset()
        self._host.dispatch(transitions)

    # ----------------------------------------------------------------------------------------
    # Internals: admission and recording

    def _admit(self) -> _Ticket:
        host = self._host
        machine = self.machine
        if machine.clean and not machine.windowed and not host.overrides and host.store is None:
            return machine.generation  # the fast path: a closed breaker with nothing to watch
        override = host.override_for(self.dependency)
        if override is None and host.store is None:
            wait = machine.open_wait()
            if wait > 0:  # open for a while yet: no need to take the lock
                self.rejected += 1
                raise CircuitOpenError(self.dependency, wait)
        if override is Override.DISABLED:
            return None
        if override is Override.FORCED_OPEN:
            self.rejected += 1
            raise CircuitOpenError(self.dependency, None, override.value)
        store = host.store
        if store is not None and host.store_healthy():
            try:
                admission = store.admit(self.dependency, machine.config)
            except Exception as exc:  # noqa: BLE001 - an outage falls back to the local breaker
                host.store_failed(exc)
            else:
                return self._admit_shared(admission, override)
        return self._admit_local(override)

    def _admit_local(self, override: Override | None) -> Permit | None:
        with self._lock:
            verdict, transitions = self.machine.admit()
        if transitions:
            self._host.dispatch(transitions)
        if isinstance(verdict, Rejection):
            if override is Override.FORCED_CLOSED:
                return None
            self.rejected += 1
            raise CircuitOpenError(self.dependency, verdict.retry_after, verdict.state)
        return verdict

    def _admit_shared(
        self, admission: SharedAdmission, override: Override | None
    ) -> _SharedPermit | None:
        if admission.moved_to_half_open:
            self._host.dispatch(
                [Transition(self.dependency, "open", "half-open", None, shared=True)]
            )
        if admission.override is Override.DISABLED:
            return None
        if not admission.admitted and override is not Override.FORCED_CLOSED:
            self.rejected += 1
            state = admission.override.value if admission.override else admission.state
            raise CircuitOpenError(self.dependency, admission.retry_after, state)
        return _SharedPermit(admission, self.machine.clock())

    def _record(
        self,
        ticket: _Ticket,
        exc: BaseException | None,
        ignore: ExceptionMatch | None = None,
        success_on: ExceptionMatch | None = None,
    ) -> None:
        if ticket is None:
            return
        machine = self.machine
        if type(ticket) is int:
            if exc is None and machine.clean and ticket == machine.generation:
                # No lock: a lost update here only misplaces a fraction of a retry token.
                machine.earn("success")
                return
            ticket = Permit(ticket, probe=False, started=0.0)
        outcome = classify(exc, ignore, success_on)
        if isinstance(ticket, _SharedPermit):
            # The fleet's retry budget is earned in Redis (by the record script); this process
            # keeps its own too, for when Redis is unreachable.
            with self._lock:
                machine.earn(outcome)
            error = type(exc).__name__ if outcome == "failure" and exc is not None else None
            self._record_shared(ticket, outcome, error)
            return
        assert isinstance(ticket, Permit)  # noqa: S101 - narrowed for the type checker
        with self._lock:
            transitions = machine.record(ticket, outcome, exc)
        if transitions:
            self._host.dispatch(transitions)

    def _record_shared(self, permit: _SharedPermit, outcome: Outcome, error: str | None) -> None:
        store = self._host.store
        assert store is not None  # noqa: S101 - a shared permit came from the store
        if outcome == "success" and self.machine.is_slow(permit.started):
            # In the shared store a slow call counts as a failure: the rate window is local.
            outcome = "failure"
        try:
            transition = store.record(self.dependency, self.config, permit.admission, outcome)
        except Exception as exc:  # noqa: BLE001 - an outage falls back to the local breaker
            self._host.store_failed(exc)
            return
        if transition is not None:
            if transition.new == "open":
                transition = replace(transition, last_error=error or "slow call")
            self._host.dispatch([transition])


class _Guard:
    """The block form of ``Breaker.call``; works with ``with`` and ``async with``."""

    __slots__ = ("_breaker", "_ignore", "_success_on", "_ticket")

    def __init__(
        self, breaker: Breaker, ignore: ExceptionMatch | None, success_on: ExceptionMatch | None
    ) -> None:
        self._breaker = breaker
        self._ignore = ignore
        self._success_on = success_on
        self._ticket: _Ticket = None

    def __enter__(self) -> Breaker:
        self._ticket = self._breaker._admit()
        return self._breaker

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._breaker._record(self._ticket, exc, self._ignore, self._success_on)

    async def __aenter__(self) -> Breaker:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
