"""The breakers of this process: one per dependency in a ``BreakerRegistry``, with the
overrides (the test switch and operator control), the listeners, the shared store's health,
and the process-wide registry built from the settings."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from purgatory import AsyncCircuitBreakerFactory

from flowfactory.breaker.guard import Breaker
from flowfactory.breaker.machine import CircuitMachine
from flowfactory.breaker.model import (
    BreakerStatus,
    Clock,
    Override,
    RandomFraction,
    SharedStore,
    Transition,
    TransitionListener,
)
from flowfactory.config import CircuitBreakerConfig
from flowfactory.settings import get_settings

__all__ = ["BreakerRegistry", "registry", "reset_registry"]

logger = logging.getLogger(__name__)


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


class BreakerRegistry:
    """One breaker per dependency for the whole process, created on first use.

    ``clock`` (monotonic seconds) and ``random_fraction`` (uniform in [0, 1), for jitter) are
    what every breaker of the registry times and jitters by; tests pass fakes.
    """

    def __init__(
        self,
        *,
        disabled: bool = False,
        store: SharedStore | None = None,
        store_retry: float = 5.0,
        clock: Clock = time.monotonic,
        random_fraction: RandomFraction = random.random,
    ) -> None:
        self._factory = AsyncCircuitBreakerFactory()
        self._breakers: dict[str, Breaker] = {}
        self._lock = threading.Lock()
        self._listeners: list[TransitionListener] = []
        self.overrides: dict[str | None, Override] = {None: Override.DISABLED} if disabled else {}
        self.store = store
        self._store_retry = store_retry
        self._store_down_until = 0.0
        self._clock = clock
        self._random_fraction = random_fraction

    def get(self, dependency: str, config: CircuitBreakerConfig | None = None) -> Breaker:
        """The breaker of ``dependency``; a newer config replaces the thresholds, not the state."""
        breaker = self._breakers.get(dependency)
        if breaker is not None and (config is None or config == breaker.config):
            return breaker
        config = config or CircuitBreakerConfig()
        with self._lock:
            breaker = self._breakers.get(dependency)
            if breaker is None:
                circuit = _ready(
                    self._factory.get_breaker(
                        dependency, config.failure_threshold, config.reset_after.total_seconds()
                    )
                )
                machine = CircuitMachine(
                    dependency,
                    config,
                    clock=self._clock,
                    random_fraction=self._random_fraction,
                    context=circuit.context,
                )
                breaker = Breaker(machine, self)
                self._breakers[dependency] = breaker
            elif config != breaker.config:
                breaker.reconfigure(config)
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

    def dispatch(self, transitions: Sequence[Transition]) -> None:
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
        return self._clock() >= self._store_down_until

    def store_failed(self, exc: BaseException) -> None:
        """Fall back to local breakers for ``store_retry`` seconds, with a warning."""
        self._store_down_until = self._clock() + self._store_retry
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
    settings = get_settings()
    store: SharedStore | None = None
    if settings.breaker_redis_url:
        from flowfactory.breaker.redis_store import RedisStore  # noqa: PLC0415 - needs redis

        store = RedisStore(settings.breaker_redis_url, namespace=settings.project_name)
    return BreakerRegistry(disabled=not settings.breakers, store=store)
