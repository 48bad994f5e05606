"""The words the breaker package speaks: states, overrides, transitions, status rows, the
shared store's protocol, and the clock and random source a breaker is given."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal, Protocol

from flowfactory.config import CircuitBreakerConfig

__all__ = [
    "RETRY_TOKENS",
    "BreakerHost",
    "BreakerStatus",
    "Clock",
    "ExceptionMatch",
    "Outcome",
    "Override",
    "RandomFraction",
    "SharedAdmission",
    "SharedStore",
    "State",
    "Transition",
    "TransitionListener",
]

State = Literal["closed", "open", "half-open"]
Outcome = Literal["success", "failure", "neutral"]

# gRPC retry throttling (proposal A6): retries stop while tokens <= half of this.
RETRY_TOKENS: Final = 10.0

Clock = Callable[[], float]
"""Seconds on a monotonic clock: ``time.monotonic`` in production, a fake one in tests."""

RandomFraction = Callable[[], float]
"""A uniform draw from [0, 1): ``random.random`` in production; it jitters open times."""

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


TransitionListener = Callable[[Transition], object]


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
        outcome: Outcome,
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


class BreakerHost(Protocol):
    """What a breaker asks of the registry that holds it."""

    @property
    def overrides(self) -> Mapping[str | None, Override]:
        """Overrides in force, by dependency (None: every dependency)."""
        ...

    @property
    def store(self) -> SharedStore | None:
        """The fleet's shared state, if there is one."""
        ...

    def override_for(self, dependency: str) -> Override | None:
        """The override in force for ``dependency``."""
        ...

    def store_healthy(self) -> bool:
        """Whether the shared store is worth asking now."""
        ...

    def store_failed(self, exc: BaseException) -> None:
        """The shared store just failed: fall back to local state for a while."""
        ...

    def dispatch(self, transitions: Sequence[Transition]) -> None:
        """Tell the listeners about transitions."""
        ...
