"""Circuit breakers around every call that leaves the process.

The package owns the breaker's vocabulary (``model``: states, overrides, transitions, status
rows, the shared store's protocol); the state machine of one circuit, on an injected clock
(``machine``, over purgatory's ``Context``); the breaker callers go through (``guard``:
``call``, ``acall``, ``guard()``); the process's registry of breakers, with the test switch,
operator control, listeners and the registry built from the settings (``process``); the
fleet-wide state in Redis (``redis_store``); and which dependency a source reaches
(``dependencies``). It never imports Prefect: ``flowfactory.orchestration.breakers`` turns
transitions into events and notifications.
"""

from __future__ import annotations

from flowfactory.breaker.dependencies import (
    dependency_of_url,
    guarded,
    source_dependency,
)
from flowfactory.breaker.guard import (
    Breaker,
)
from flowfactory.breaker.machine import (
    CircuitMachine,
    Permit,
    Rejection,
    classify,
)
from flowfactory.breaker.model import (
    RETRY_TOKENS,
    BreakerHost,
    BreakerStatus,
    Clock,
    ExceptionMatch,
    Outcome,
    Override,
    RandomFraction,
    SharedAdmission,
    SharedStore,
    State,
    Transition,
    TransitionListener,
)
from flowfactory.breaker.process import (
    BreakerRegistry,
    registry,
    reset_registry,
)
from flowfactory.breaker.redis_store import (
    RedisStore,
)
from flowfactory.errors import CircuitOpenError

__all__ = [
    "RETRY_TOKENS",
    "Breaker",
    "BreakerHost",
    "BreakerRegistry",
    "BreakerStatus",
    "CircuitMachine",
    "CircuitOpenError",
    "Clock",
    "ExceptionMatch",
    "Outcome",
    "Override",
    "Permit",
    "RandomFraction",
    "RedisStore",
    "Rejection",
    "SharedAdmission",
    "SharedStore",
    "State",
    "Transition",
    "TransitionListener",
    "classify",
    "dependency_of_url",
    "guarded",
    "registry",
    "reset_registry",
    "source_dependency",
]
