"""Which dependency outside the process a source reaches, and the guarded call to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar
from urllib.parse import urlsplit

from flowfactory.breaker.guard import Breaker
from flowfactory.config import CircuitBreakerConfig, DatasetSource, FileSource, HttpSource
from flowfactory.errors import PipelineRunError

__all__ = ["dependency_of_url", "guarded", "source_dependency"]

R = TypeVar("R")

# Schemes that never leave the machine: no breaker (and no dependency) for them.
_LOCAL_SCHEMES: Final = frozenset({"file", "local", "memory"})


def dependency_of_url(url: str) -> str | None:
    """``s3://bucket/x`` -> ``s3.bucket``; ``https://host:8443/x`` -> ``https.host:8443``."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[-1].lower()
    if not scheme or scheme in _LOCAL_SCHEMES:
        return None
    return f"{scheme}.{parts.netloc.lower()}" if parts.netloc else scheme


def source_dependency(
    source: DatasetSource | FileSource | HttpSource, pipeline_config: CircuitBreakerConfig
) -> tuple[str, CircuitBreakerConfig] | None:
    """The dependency a source reaches outside the process, with its breaker settings.

    None for dataset sources and local files, and when the breaker is turned off.
    """
    if isinstance(source, DatasetSource):
        return None
    if isinstance(source, FileSource) and not source.is_url:
        return None
    config = (
        source.circuit_breaker.over(pipeline_config)
        if source.circuit_breaker
        else (pipeline_config)
    )
    if not config.enabled:
        return None
    if isinstance(source, HttpSource):
        name: str | None = config.dependency or f"http.{source.http.block}"
    else:
        name = config.dependency or dependency_of_url(source.path)
    return None if name is None else (name, config)


def guarded(breaker: Breaker | None, function: Callable[[], R]) -> R:
    """Call ``function`` through ``breaker`` (directly without one).

    "No files match" is an answer from a dependency that is up: neither failure nor success.
    """
    if breaker is None:
        return function()
    with breaker.guard(ignore=PipelineRunError):
        return function()
