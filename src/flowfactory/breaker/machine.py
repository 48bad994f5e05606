"""The state machine of one circuit, on an injected clock: no lock, no I/O, no listeners.

purgatory 3.0.1's ``Context`` holds the closed/opened/half-opened state and the consecutive
failure count; the machine decides who is admitted and which outcomes reach that context,
which fixes what purgatory gets wrong for us:

* half-open admits ``half_open_probes`` calls, not everyone;
* outcomes are fenced by generation: a call admitted before a transition cannot move the
  circuit afterwards (purgatory lets a stale success close a half-open circuit);
* cancellations and other non-``Exception`` exits are neutral, and "ignored" exceptions are
  neutral too, apart from "counts as success" (purgatory's ``exclude`` means success);
* the open time backs off exponentially with jitter (purgatory's TTL is fixed);
* a failure-rate and slow-call window (resilience4j style) trips the same context;
* time is the injected clock's, so tests move it instead of sleeping (purgatory reads
  ``time.time()`` to end the open period; the machine makes the same move on its clock).

Every decision comes back as a value (a ``Permit`` or a ``Rejection``, and the
``Transition``s it made); ``guard.Breaker`` serializes the calls and acts on the values.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from purgatory.domain.messages.events import ContextChanged
from purgatory.domain.model import ClosedState, Context, HalfOpenedState, OpenedState

from flowfactory.breaker.model import (
    RETRY_TOKENS,
    Clock,
    ExceptionMatch,
    Outcome,
    RandomFraction,
    State,
    Transition,
)
from flowfactory.config import CircuitBreakerConfig
from flowfactory.errors import CircuitOpenError

__all__ = ["CircuitMachine", "Permit", "Rejection", "classify"]

_FROM_PURGATORY: Final[dict[str, State]] = {
    "closed": "closed",
    "opened": "open",
    "half-opened": "half-open",
}


@dataclass(slots=True)
class Permit:
    """An admitted call: the generation it was admitted in, when, and whether it probes."""

    generation: int
    probe: bool
    started: float


@dataclass(frozen=True, slots=True)
class Rejection:
    """A call turned away: the state that refused it and the seconds until a probe may go."""

    state: State
    retry_after: float


def _matches(match: ExceptionMatch | None, exc: Exception) -> bool:
    if match is None:
        return False
    if isinstance(match, type | tuple):
        return isinstance(exc, match)
    return match(exc)


def classify(
    exc: BaseException | None,
    ignore: ExceptionMatch | None = None,
    success_on: ExceptionMatch | None = None,
) -> Outcome:
    """What a call's exit says about its dependency."""
    if exc is None:
        return "success"
    if not isinstance(exc, Exception) or isinstance(exc, CircuitOpenError):
        return "neutral"  # cancelled, exiting, or another breaker's rejection
    if _matches(ignore, exc):
        return "neutral"
    if _matches(success_on, exc):
        return "success"
    return "failure"


def _watches_window(config: CircuitBreakerConfig) -> bool:
    return config.failure_rate_threshold is not None or config.slow_call_duration is not None


class CircuitMachine:
    """Closed, open and half-open for one dependency; not thread-safe (the caller locks).

    ``clean``, ``windowed``, ``generation`` and ``open_until`` are read without the lock by
    the caller's fast paths (which also ``earn`` a clean success without it); everything else
    is called under the lock.
    """

    def __init__(
        self,
        dependency: str,
        config: CircuitBreakerConfig,
        *,
        clock: Clock,
        random_fraction: RandomFraction,
        context: Context | None = None,
    ) -> None:
        self.dependency = dependency
        self.config = config
        self.clock = clock
        self._random_fraction = random_fraction
        self._context = context or Context(
            dependency, config.failure_threshold, config.reset_after.total_seconds()
        )
        self._context.exclude_list = []  # outcomes are classified before they reach it
        self.generation = 0
        self.probes = 0
        self.stale = 0
        self._reopens = 0
        self._window: deque[tuple[bool, bool]] = deque(maxlen=config.window)
        self._tokens = RETRY_TOKENS
        self._last_error: str | None = None
        # Closed with no failures counted: admission needs nothing (purgatory's closed state
        # ignores new requests and clean successes).
        self.clean = True
        self.windowed = _watches_window(config)
        self.open_until = 0.0  # on ``clock``; in the past unless open

    def configure(self, config: CircuitBreakerConfig) -> None:
        """New thresholds and windows; the state and counts stay."""
        self.config = config
        self.windowed = _watches_window(config)
        self._context.threshold = config.failure_threshold
        self._window = deque(self._window, maxlen=config.window)

    # ----------------------------------------------------------------------------------------
    # Admission and outcomes

    def open_wait(self) -> float:
        """Seconds the circuit stays open yet (zero or less: not open, or its time is up)."""
        return self.open_until - self.clock()

    def admit(self) -> tuple[Permit | Rejection, list[Transition]]:
        """Admit or reject one call; an open circuit whose time is up turns half-open."""
        ctx = self._context
        now = self.clock()
        old = _FROM_PURGATORY[ctx.state]
        if old == "open":
            wait = self.open_until - now
            if wait > 0:
                return Rejection("open", wait), []
            ctx.set_state(HalfOpenedState())
        transitions = self._drain(old) if ctx.messages else []
        self.clean = ctx.state == "closed" and not ctx.failure_count
        probe = False
        if ctx.state == "half-opened":
            if self.probes >= self.config.half_open_probes:
                return Rejection("half-open", self.config.reset_after.total_seconds()), transitions
            self.probes += 1
            probe = True
        return Permit(self.generation, probe, now), transitions

    def record(
        self, permit: Permit, outcome: Outcome, exc: BaseException | None = None
    ) -> list[Transition]:
        """Count the outcome of an admitted call (``exc``: what a failure raised)."""
        if permit.generation != self.generation:
            self.stale += 1  # admitted before a transition: its news is out of date
            return []
        if permit.probe:
            self.probes -= 1
        if outcome == "neutral":
            return []
        ctx = self._context
        old = _FROM_PURGATORY[ctx.state]
        failures = 0
        self.earn(outcome)
        if outcome == "success":
            ctx.handle_end_request()
        else:
            assert exc is not None  # noqa: S101 - a failure has an exception
            self._last_error = type(exc).__name__
            failures = (ctx.failure_count or 0) + 1
            ctx.handle_exception(exc)
        if old == "closed" and ctx.state == "closed":
            self._judge_window(failed=outcome == "failure", slow=self.is_slow(permit.started))
        transitions = self._drain(old, failures) if ctx.messages else []
        self.clean = ctx.state == "closed" and not ctx.failure_count
        return transitions

    def is_slow(self, started: float) -> bool:
        """Whether a call admitted at ``started`` has taken longer than a slow call."""
        slow_after = self.config.slow_call_duration
        return slow_after is not None and self.clock() - started > slow_after.total_seconds()

    # ----------------------------------------------------------------------------------------
    # The retry budget (gRPC style)

    def earn(self, outcome: Outcome) -> None:
        """A success earns ``retry_budget`` tokens, a failure costs one."""
        if outcome == "success":
            tokens = self._tokens + self.config.retry_budget
            self._tokens = tokens if tokens < RETRY_TOKENS else RETRY_TOKENS
        elif outcome == "failure":
            self._tokens = max(0.0, self._tokens - 1)

    def spend_retry(self) -> bool:
        """Take a token for a retry; False while half of them or more are spent."""
        if self._tokens <= RETRY_TOKENS / 2:
            return False
        # A retry spends what a failure would, so a fleet cannot queue many on one token.
        self._tokens = max(0.0, self._tokens - 1)
        return True

    # ----------------------------------------------------------------------------------------
    # Inspection and control

    def status(self) -> tuple[State, int, float | None]:
        """State, consecutive failures, and seconds until a probe may go (None: not open).

        An open circuit whose time is up reads as half-open.
        """
        ctx = self._context
        state = _FROM_PURGATORY[ctx.state]
        wait: float | None = None
        if state == "open":
            wait = max(0.0, self.open_until - self.clock())
            if wait == 0.0:
                state = "half-open"
        return state, ctx.failure_count or 0, wait

    def reset(self) -> list[Transition]:
        """Closed, no failures, a full retry budget."""
        old = _FROM_PURGATORY[self._context.state]
        self._context.set_state(ClosedState())
        transitions = self._drain(old)
        self._tokens = RETRY_TOKENS
        self.clean = True
        return transitions

    # ----------------------------------------------------------------------------------------
    # Internals

    def _judge_window(self, *, failed: bool, slow: bool) -> None:
        """Open on the failure or slow-call rate over the last calls (resilience4j style)."""
        config = self.config
        if not self.windowed:
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
            self._context.set_state(OpenedState(self._context.name))  # purgatory's own move

    def _drain(self, old: State, failures: int = 0) -> list[Transition]:
        """Turn purgatory's queued messages into transitions."""
        transitions: list[Transition] = []
        ctx = self._context
        messages, ctx.messages = ctx.messages, []
        for message in messages:
            if not isinstance(message, ContextChanged):
                continue
            new = _FROM_PURGATORY[message.state]
            if new == old:
                continue
            self.generation += 1
            self.probes = 0
            self._window.clear()
            open_seconds: float | None = None
            self.open_until = 0.0
            if new == "open":
                open_seconds = self._open_seconds()
                ctx.ttl = open_seconds
                self.open_until = self.clock() + open_seconds
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
        return capped * (1.0 - config.jitter * self._random_fraction())
