"""Circuit breakers around every call that leaves the process (see ``core`` for the design)."""

from __future__ import annotations

from flowfactory.breaker.core import (
    RETRY_TOKENS,
    Breaker,
    BreakerRegistry,
    BreakerStatus,
    CircuitOpenError,
    ExceptionMatch,
    Override,
    SharedAdmission,
    SharedStore,
    State,
    Transition,
    registry,
    reset_registry,
)
from flowfactory.breaker.dependencies import (
    dependency_of_url,
    guarded,
    source_dependency,
)
from flowfactory.breaker.redis_store import (
    RedisStore,
)

__all__ = [
    "RETRY_TOKENS",
    "Breaker",
    "BreakerRegistry",
    "BreakerStatus",
    "CircuitOpenError",
    "ExceptionMatch",
    "Override",
    "RedisStore",
    "SharedAdmission",
    "SharedStore",
    "State",
    "Transition",
    "dependency_of_url",
    "guarded",
    "registry",
    "reset_registry",
    "source_dependency",
]
