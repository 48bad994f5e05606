"""Circuit breakers around every call that leaves the process (see ``core`` for the design)."""

from __future__ import annotations

from flowfactory.breaker.core import (
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

__all__ = [
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
