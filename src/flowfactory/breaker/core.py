"""Circuit breakers for external dependencies, on purgatory's state machine.

purgatory 3.0.1 supplies the named registry (``AsyncCircuitBreakerFactory``) and the
closed/opened/half-opened ``Context``. This layer decides who is admitted and which outcomes
reach that context, which fixes what purgatory gets wrong for us:

* a rejection raises a fresh ``CircuitOpenError`` (picklable, with the time to retry) instead
  of re-raising the shared ``OpenedState`` whose traceback grows on every call;
* half-open admits ``half_open_probes`` calls, not everyone;
* outcomes are fenced by generation: a call admitted before a transition cannot move the
  circuit afterwards (purgatory lets a stale success close a half-open circuit);
* cancellations and other non-``Exception`` exits are neutral, and "ignored" exceptions are
  neutral too, apart from "counts as success" (purgatory's ``exclude`` means success);
* the open time backs off exponentially with jitter (purgatory's TTL is fixed);
* a failure-rate and slow-call window (resilience4j style) trips the same context;
* state changes happen under a lock, so one breaker is safe across Prefect's task threads and
  their event loops (purgatory's shared context is not).

The per-call paths are synchronous and cheap, so the same breaker serves sync tasks and
coroutines. A ``SharedStore`` (Redis) can hold the state for a whole fleet of workers; the
local breaker is its fallback.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import StrEnum
from types import TracebackType
from typing import Any, Final, Literal, ParamSpec, Protocol, TypeVar

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.messages.events import ContextChanged
from purgatory.domain.model import Context, OpenedState

from flowfactory.config import CircuitBreakerConfig
from flowfactory.errors import CircuitOpenError

__all__ = [
    "RETRY_TOKENS",
    "Breaker",
    "BreakerRegistry",
    "BreakerStatus",
    "CircuitOpenError",
    "ExceptionMatch",
    "Override",
    "SharedAdmission",
    "SharedStore",
    "State",
    "Transition",
    "registry",
    "reset_registry",
]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

State = Literal["closed", "open", "half-open"]
_FROM_PURGATORY: Final[dict[str, State]] = {
    "closed": "closed",
    "opened": "open",
    "half-opened": "half-open",
}
# gRPC retry throttling (proposal A6): retries stop while tokens <= half of this.
RETRY_TOKENS: Final = 10.0

ExceptionMatch = type[BaseException] | tuple[type[BaseException], ...] | Callable[[Exception], bool]


class Override(StrEnum):
    """A state imposed on breakers by a test or an operator, whatever their counts say."""

    DISABLED = "disabled"  # calls go straight through and are not recorded
    FORCED_OPEN = "forced-open"  # every call is rejected
    FORCED_CLOSED = "forced-closed"  # every call goes through; outcomes still recorded


@dataclass(frozen=True)
class Transition:
    """A breaker moved from one state to another."""

    dependency: str
    old: State
    new: State
    open_seconds: float | None
    shared: bool = False
    failures: int = 0  # failures counted when it moved (consecutive, or in the window)
    last_error: str | None = None  # class name of the failure that moved it, if one did


@dataclass(frozen=True)
class BreakerStatus:
    """One row of ``flowfactory status``: where a breaker stands now."""

    dependency: str
    state: State
    override: Override | None
    consecutive_failures: int
    retry_after: float | None
    rejected: int
    shared: bool


@dataclass(frozen=True)
class SharedAdmission:
    """What the shared store answered to "may this call go ahead?"."""

    admitted: bool
    state: State
    generation: int
    probe: bool
    retry_after: float | None
    override: Override | None = None
    moved_to_half_open: bool = False  # this call's admission made the transition


class SharedStore(Protocol):
    """Breaker state kept outside the process (Redis); every method may raise on outage."""

    def admit(self, dependency: str, config: CircuitBreakerConfig) -> SharedAdmission:
        """Admit or reject one call; a probe holds a fleet-wide lease until it reports."""
        ...

    def record(
        self,
        dependency: str,
        config: CircuitBreakerConfig,
        admission: SharedAdmission,
        outcome: Literal["success", "failure", "neutral"],
    ) -> Transition | None:
        """Count one outcome of an admitted call; returns the transition it caused."""
        ...

    def force(self, dependency: str, override: Override | None) -> None:
        """Impose (or lift, with None) a state on every worker."""
        ...

    def reset(self, dependency: str) -> None:
        """Forget the breaker's state: closed, no failures, no override."""
        ...

    def status(self, dependency: str) -> tuple[State, Override | None, int, float | None]:
        """State, override, consecutive failures and seconds until a probe may go."""
        ...

    def spend_retry(self, dependency: str) -> bool:
        """Take one token of the fleet's retry budget; False when half of it is spent."""
        ...

    def dependencies(self) -> list[str]:
        """Every dependency the store holds state for."""
        ...


def _ready(awaitable: Awaitable[Any]) -> Any:
    """The result of a coroutine that never suspends (purgatory's in-memory unit of work).

    Lets sync code (most Prefect tasks) create circuits through the async factory.
    """
    coroutine = awaitable.__await__()
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("purgatory's in-memory store suspended; it is expected never to")


def _matches(match: ExceptionMatch | None, exc: Exception) -> bool:
    if match is None:
        return False
    if isinstance(match, type | tuple):
        return isinstance(exc, match)
    return match(exc)


@dataclass(slots=True)
class _Permit:
    generation: int
    probe: bool
    started: float
    shared: SharedAdmission | None = None


class Breaker:
    """The breaker of one dependency, shared by every caller in the process."""

    def __init__(
        self,
        dependency: str,
        config: CircuitBreakerConfig,
        context: Context,
        owner: BreakerRegistry,
    ) -> None:
        self.dependency = dependency
        self.config = config
        self._context = context
        self._context.exclude_list = []  # classification happens here, per call
        self._owner = owner
        self._lock = threading.Lock()
        self._generation = 0
        self._probes = 0
        self._reopens = 0
        self._window: deque[tuple[bool, bool]] = deque(maxlen=config.window)
        self._tokens = RETRY_TOKENS
        self.rejected = 0
        self.stale = 0
        self._last_error: str | None = None
        # Closed with no failures counted and no rate window: a call needs neither the lock nor
        # purgatory's context (whose closed state ignores new requests and clean successes).
        self._clean = True
        self._windowed = self._has_window(config)
        self._open_until = 0.0  # wall clock, like purgatory's opened_at

    @staticmethod
    def _has_window(config: CircuitBreakerConfig) -> bool:
        return config.failure_rate_threshold is not None or config.slow_call_duration is not None

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
        permit = self._admit()
        try:
            result = await function(*args, **kwargs)
        except BaseException as exc:
            self._record(permit, exc)
            raise
        self._record(permit, None)
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
        override = self._owner.override_for(self.dependency)
        if override is Override.DISABLED or override is Override.FORCED_CLOSED:
            return True
        if override is Override.FORCED_OPEN:
            return False
        if self.state() != "closed":
            return False
        store = self._owner.store
        if store is not None and self._owner.store_healthy():
            try:
                return store.spend_retry(self.dependency)
            except Exception as exc:  # noqa: BLE001 - falls back to this process's budget
                self._owner.store_failed(exc)
        with self._lock:
            if self._tokens <= RETRY_TOKENS / 2:
                return False
            # A retry spends what a failure would, so a fleet cannot queue many on one token.
            self._tokens = max(0.0, self._tokens - 1)
            return True

    # ----------------------------------------------------------------------------------------
    # Inspection and control

    def state(self) -> State:
        """The state now (an open circuit whose time is up reads as half-open)."""
        return self.status().state

    def status(self) -> BreakerStatus:
        """A snapshot for display."""
        override = self._owner.override_for(self.dependency)
        store = self._owner.store
        if store is not None and self._owner.store_healthy():
            try:
                state, shared_override, failures, retry_after = store.status(self.dependency)
            except Exception as exc:  # noqa: BLE001 - shown as local state with a warning
                self._owner.store_failed(exc)
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
            ctx = self._context
            state = _FROM_PURGATORY[ctx.state]
            wait: float | None = None
            if state == "open":
                wait = max(0.0, (ctx.opened_at or 0.0) + ctx.ttl - time.time())
                if wait == 0.0:
                    state = "half-open"
            failures = ctx.failure_count or 0
        return BreakerStatus(
            self.dependency, state, override, failures, wait, self.rejected, shared=False
        )

    def reset(self) -> None:
        """Closed, no failures, a fresh window and budget (a test's or operator's reset)."""
        with self._lock:
            from purgatory.domain.model import ClosedState  # noqa: PLC0415

            old = _FROM_PURGATORY[self._context.state]
            self._context.set_state(ClosedState())
            transitions = self._drain(old)
            self._tokens = RETRY_TOKENS
            self._clean = True
        self._owner.dispatch(transitions)

    # ----------------------------------------------------------------------------------------
    # Internals: admission and recording

    def _admit(self) -> _Permit | int | None:
        owner = self._owner
        if self._clean and not self._windowed and not owner.overrides and owner.store is None:
            return self._generation  # the fast path: a closed breaker with nothing to watch
        override = owner.override_for(self.dependency)
        if override is None and owner.store is None:
            wait = self._open_until - time.time()
            if wait > 0:  # open for a while yet: no need to ask purgatory (or take the lock)
                self.rejected += 1
                raise CircuitOpenError(self.dependency, wait)
        if override is Override.DISABLED:
            return None
        if override is Override.FORCED_OPEN:
            self.rejected += 1
            raise CircuitOpenError(self.dependency, None, override.value)
        if self._owner.store is not None and self._owner.store_healthy():
            permit = self._admit_shared(override)
            if permit is not None:
                return permit
        return self._admit_local(override)

    def _admit_local(self, override: Override | None) -> _Permit | None:
        rejection: CircuitOpenError | None = None
        with self._lock:
            ctx = self._context
            old = _FROM_PURGATORY[ctx.state]
            probe = False
            try:
                ctx.handle_new_request()
            except OpenedState as opened:
                # purgatory re-raises one shared instance: cut what it has accumulated.
                opened.__traceback__ = opened.__context__ = None
                retry_after = max(0.0, opened.opened_at + ctx.ttl - time.time())
                rejection = CircuitOpenError(self.dependency, retry_after)
            transitions = self._drain(old) if ctx.messages else []
            self._clean = ctx.state == "closed" and not ctx.failure_count
            if rejection is None and ctx.state == "half-opened":
                if self._probes >= self.config.half_open_probes:
                    rejection = CircuitOpenError(
                        self.dependency, self.config.reset_after.total_seconds(), "half-open"
                    )
                else:
                    self._probes += 1
                    probe = True
            generation = self._generation
        if transitions:
            self._owner.dispatch(transitions)
        if rejection is not None:
            if override is Override.FORCED_CLOSED:
                return None
            self.rejected += 1
            raise rejection
        return _Permit(generation, probe, time.perf_counter())

    def _admit_shared(self, override: Override | None) -> _Permit | None:
        store = self._owner.store
        assert store is not None  # noqa: S101 - checked by the caller
        try:
            admission = store.admit(self.dependency, self.config)
        except Exception as exc:  # noqa: BLE001 - an outage falls back to the local breaker
            self._owner.store_failed(exc)
            return None
        if admission.moved_to_half_open:
            self._owner.dispatch(
                [Transition(self.dependency, "open", "half-open", None, shared=True)]
            )
        if admission.override is Override.DISABLED:
            return _Permit(-1, probe=False, started=0.0, shared=None)
        if not admission.admitted and override is not Override.FORCED_CLOSED:
            self.rejected += 1
            state = admission.override.value if admission.override else admission.state
            raise CircuitOpenError(self.dependency, admission.retry_after, state)
        return _Permit(admission.generation, admission.probe, time.perf_counter(), admission)

    def _classify(
        self,
        exc: BaseException | None,
        ignore: ExceptionMatch | None,
        success_on: ExceptionMatch | None,
    ) -> Literal["success", "failure", "neutral"]:
        if exc is None:
            return "success"
        if not isinstance(exc, Exception) or isinstance(exc, CircuitOpenError):
            return "neutral"  # cancelled, exiting, or another breaker's rejection
        if _matches(ignore, exc):
            return "neutral"
        if _matches(success_on, exc):
            return "success"
        return "failure"

    def _record(
        self,
        permit: _Permit | int | None,
        exc: BaseException | None,
        ignore: ExceptionMatch | None = None,
        success_on: ExceptionMatch | None = None,
    ) -> None:
        if permit is None:
            return
        if type(permit) is int:
            if exc is None and self._clean and permit == self._generation:
                # A lost update here only misplaces a fraction of a retry token.
                tokens = self._tokens + self.config.retry_budget
                self._tokens = tokens if tokens < RETRY_TOKENS else RETRY_TOKENS
                return
            permit = _Permit(permit, probe=False, started=0.0)
        assert isinstance(permit, _Permit)  # noqa: S101 - narrowed for the type checker
        if permit.generation < 0:
            return
        outcome = self._classify(exc, ignore, success_on)
        slow_after = self.config.slow_call_duration
        slow = slow_after is not None and (
            time.perf_counter() - permit.started > slow_after.total_seconds()
        )
        if permit.shared is not None:
            # The fleet's retry budget is earned in Redis (by the record script); this process
            # keeps its own too, for when Redis is unreachable.
            with self._lock:
                self._earn(outcome)
            error = type(exc).__name__ if outcome == "failure" and exc is not None else None
            self._record_shared(permit.shared, outcome, slow, error)
            return
        with self._lock:
            if permit.generation != self._generation:
                self.stale += 1  # admitted before a transition: its news is out of date
                return
            if permit.probe:
                self._probes -= 1
            if outcome == "neutral":
                return
            ctx = self._context
            old = _FROM_PURGATORY[ctx.state]
            failures = 0
            self._earn(outcome)
            if outcome == "success":
                ctx.handle_end_request()
            else:
                assert exc is not None  # noqa: S101 - a failure has an exception
                self._last_error = type(exc).__name__
                failures = (ctx.failure_count or 0) + 1
                ctx.handle_exception(exc)
            if old == "closed" and ctx.state == "closed":
                self._judge_window(ctx, failed=outcome == "failure", slow=slow)
            transitions = self._drain(old, failures) if ctx.messages else []
            self._clean = ctx.state == "closed" and not ctx.failure_count
        if transitions:
            self._owner.dispatch(transitions)

    def _earn(self, outcome: Literal["success", "failure", "neutral"]) -> None:
        """Retry tokens: a success earns ``retry_budget``, a failure costs one (lock held)."""
        if outcome == "success":
            self._tokens = min(RETRY_TOKENS, self._tokens + self.config.retry_budget)
        elif outcome == "failure":
            self._tokens = max(0.0, self._tokens - 1)

    def _record_shared(
        self,
        admission: SharedAdmission,
        outcome: Literal["success", "failure", "neutral"],
        slow: bool,
        error: str | None = None,
    ) -> None:
        store = self._owner.store
        assert store is not None  # noqa: S101 - a shared permit came from the store
        if slow and outcome == "success" and self.config.slow_call_duration is not None:
            # In the shared store a slow call counts as a failure: the rate window is local.
            outcome = "failure"
        try:
            transition = store.record(self.dependency, self.config, admission, outcome)
        except Exception as exc:  # noqa: BLE001 - an outage falls back to the local breaker
            self._owner.store_failed(exc)
            return
        if transition is not None:
            if transition.new == "open":
                transition = replace(transition, last_error=error or "slow call")
            self._owner.dispatch([transition])

    def _judge_window(self, ctx: Context, *, failed: bool, slow: bool) -> None:
        """Open on the failure or slow-call rate over the last calls (resilience4j style)."""
        config = self.config
        if config.failure_rate_threshold is None and config.slow_call_duration is None:
            return
        self._window.append((failed, slow))
        calls = len(self._window)
        if calls < config.minimum_calls:
            return
        failures = sum(f for f, _ in self._window)
        slows = sum(s for _, s in self._window)
        rate_exceeded = (
            config.failure_rate_threshold is not None
            and failures / calls >= config.failure_rate_threshold
        )
        slow_exceeded = (
            config.slow_call_duration is not None
            and slows / calls >= config.slow_call_rate_threshold
        )
        if rate_exceeded or slow_exceeded:
            ctx.set_state(OpenedState(ctx.name))  # purgatory's own transition to open

    def _drain(self, old: State, failures: int = 0) -> list[Transition]:
        """Turn purgatory's queued messages into our transitions (under the lock)."""
        transitions: list[Transition] = []
        ctx = self._context
        messages, ctx.messages = ctx.messages, []
        for message in messages:
            if not isinstance(message, ContextChanged):
                continue
            new = _FROM_PURGATORY[message.state]
            if new == old:
                continue
            self._generation += 1
            self._probes = 0
            self._window.clear()
            open_seconds: float | None = None
            self._open_until = 0.0
            if new == "open":
                open_seconds = self._open_seconds()
                ctx.ttl = open_seconds
                self._open_until = (message.opened_at or time.time()) + open_seconds
                self._reopens += 1
            elif new == "closed":
                self._reopens = 0
            transitions.append(
                Transition(
                    self.dependency,
                    old,
                    new,
                    open_seconds,
                    failures=failures if new == "open" else 0,
                    last_error=self._last_error if new == "open" else None,
                )
            )
            old = new
        return transitions

    def _open_seconds(self) -> float:
        """Exponential backoff over consecutive opens, shortened by a random jitter."""
        config = self.config
        base = config.reset_after.total_seconds() * config.backoff**self._reopens
        capped = min(base, config.max_reset_after.total_seconds())
        return capped * (1.0 - config.jitter * random.random())  # noqa: S311 - not crypto


class _Guard:
    """The block form of ``Breaker.call``; works with ``with`` and ``async with``."""

    __slots__ = ("_breaker", "_ignore", "_permit", "_success_on")

    def __init__(
        self, breaker: Breaker, ignore: ExceptionMatch | None, success_on: ExceptionMatch | None
    ) -> None:
        self._breaker = breaker
        self._ignore = ignore
        self._success_on = success_on
        self._permit: _Permit | int | None = None

    def __enter__(self) -> Breaker:
        self._permit = self._breaker._admit()
        return self._breaker

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._breaker._record(self._permit, exc, self._ignore, self._success_on)

    async def __aenter__(self) -> Breaker:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


TransitionListener = Callable[[Transition], object]


class BreakerRegistry:
    """One breaker per dependency for the whole process, created on first use."""

    def __init__(
        self, *, disabled: bool = False, store: SharedStore | None = None, store_retry: float = 5.0
    ) -> None:
        self._factory = AsyncCircuitBreakerFactory()
        self._breakers: dict[str, Breaker] = {}
        self._lock = threading.Lock()
        self._listeners: list[TransitionListener] = []
        self.overrides: dict[str | None, Override] = {None: Override.DISABLED} if disabled else {}
        self.store = store
        self._store_retry = store_retry
        self._store_down_until = 0.0

    def get(self, dependency: str, config: CircuitBreakerConfig | None = None) -> Breaker:
        """The breaker of ``dependency``; a newer config replaces the thresholds, not the state."""
        breaker = self._breakers.get(dependency)
        if breaker is not None and (config is None or config == breaker.config):
            return breaker
        config = config or CircuitBreakerConfig()
        with self._lock:
            breaker = self._breakers.get(dependency)
            if breaker is None:
                wrapper = _ready(
                    self._factory.get_breaker(
                        dependency, config.failure_threshold, config.reset_after.total_seconds()
                    )
                )
                breaker = Breaker(dependency, config, wrapper.context, self)
                self._breakers[dependency] = breaker
            elif config != breaker.config:
                with breaker._lock:
                    breaker.config = config
                    breaker._windowed = breaker._has_window(config)
                    breaker._context.threshold = config.failure_threshold
                    breaker._window = deque(breaker._window, maxlen=config.window)
        return breaker

    def breakers(self) -> list[Breaker]:
        """Every breaker created so far, by name."""
        return [self._breakers[name] for name in sorted(self._breakers)]

    def statuses(self) -> list[BreakerStatus]:
        """A status row per breaker, by name."""
        return [breaker.status() for breaker in self.breakers()]

    # ----------------------------------------------------------------------------------------
    # Overrides (the test switch) and operator control

    def override_for(self, dependency: str) -> Override | None:
        """The override in force for ``dependency``: its own, else the global one."""
        overrides = self.overrides
        if not overrides:
            return None
        return overrides.get(dependency) or overrides.get(None)

    @contextmanager
    def overridden(
        self, override: Override | None, dependency: str | None = None
    ) -> Iterator[None]:
        """Impose ``override`` on one dependency (or all, with None) inside the block.

        The test switch: ``with registry().overridden(Override.DISABLED): ...``.
        """
        with self._lock:
            previous = self.overrides.get(dependency)
            self._set_override(dependency, override)
        try:
            yield
        finally:
            with self._lock:
                self._set_override(dependency, previous)

    def force(self, dependency: str, override: Override | None) -> None:
        """Impose a state on a dependency: fleet-wide with a shared store, else in this process."""
        if self.store is not None:
            self.store.force(dependency, override)
            return
        with self._lock:
            self._set_override(dependency, override)

    def reset(self, dependency: str) -> None:
        """Close a breaker and forget its counts (fleet-wide with a shared store)."""
        if self.store is not None:
            self.store.reset(dependency)
        with self._lock:
            self._set_override(dependency, None)
        self.get(dependency).reset()

    def _set_override(self, dependency: str | None, override: Override | None) -> None:
        overrides = dict(self.overrides)
        if override is None:
            overrides.pop(dependency, None)
        else:
            overrides[dependency] = override
        self.overrides = overrides  # replaced whole: readers need no lock

    # ----------------------------------------------------------------------------------------
    # Listeners

    def add_listener(self, listener: TransitionListener) -> None:
        """Call ``listener(transition)`` on every state change of every breaker."""
        self._listeners.append(listener)

    def remove_listener(self, listener: TransitionListener) -> None:
        """Stop calling ``listener``."""
        self._listeners.remove(listener)

    def dispatch(self, transitions: list[Transition]) -> None:
        """Tell the listeners; one that raises is logged, never the caller's problem."""
        for transition in transitions:
            logger.info(
                "circuit breaker %s: %s -> %s",
                transition.dependency,
                transition.old,
                transition.new,
            )
            for listener in list(self._listeners):
                try:
                    listener(transition)
                except Exception:
                    logger.exception("circuit breaker listener %r failed", listener)

    # ----------------------------------------------------------------------------------------
    # Shared store health

    def store_healthy(self) -> bool:
        """False for a while after the store failed, so calls do not each wait for it."""
        return time.monotonic() >= self._store_down_until

    def store_failed(self, exc: BaseException) -> None:
        """Fall back to local breakers for ``store_retry`` seconds, with a warning."""
        self._store_down_until = time.monotonic() + self._store_retry
        logger.warning(
            "circuit breaker store unavailable (%s: %s); using local breakers for %.0f s",
            type(exc).__name__,
            exc,
            self._store_retry,
        )


_registry: BreakerRegistry | None = None
_registry_lock = threading.Lock()


def registry() -> BreakerRegistry:
    """The process-wide registry, configured from the settings on first use."""
    global _registry  # noqa: PLW0603 - one registry per process is the point
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = _from_settings()
    return _registry


def reset_registry(new: BreakerRegistry | None = None) -> BreakerRegistry:
    """Replace the process-wide registry (a fresh one from the settings by default)."""
    global _registry  # noqa: PLW0603 - one registry per process is the point
    with _registry_lock:
        _registry = new if new is not None else _from_settings()
    return _registry


def _from_settings() -> BreakerRegistry:
    from flowfactory.settings import get_settings  # noqa: PLC0415 - settings read once

    settings = get_settings()
    store: SharedStore | None = None
    if settings.breaker_redis_url:
        from flowfactory.breaker.redis_store import RedisStore  # noqa: PLC0415 - needs redis

        store = RedisStore(settings.breaker_redis_url, namespace=settings.project_name)
    return BreakerRegistry(disabled=not settings.breakers, store=store)
