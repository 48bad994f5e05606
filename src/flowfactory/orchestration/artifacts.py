"""Keys of the artifacts flowfactory publishes (Prefect allows lowercase letters, digits and -)."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["artifact_key"]

_NOT_ALLOWED: Final = re.compile(r"[^a-z0-9-]+")


def artifact_key(*parts: str) -> str:
    """``artifact_key("canary", "flight_delays", "summary")``: ``canary-flight-delays-summary``."""
    return _NOT_ALLOWED.sub("-", "-".join(parts).lower())
