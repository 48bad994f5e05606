"""Where breakers meet pipelines and Prefect: which dependency a source touches, the guarded
call, the retry condition that spends no retry on an open circuit, and the transition events."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import urlsplit

from flowfactory import events
from flowfactory.breaker.core import (
    Breaker,
    BreakerRegistry,
    CircuitOpenError,
    Transition,
    registry,
)
from flowfactory.config import CircuitBreakerConfig, DatasetSource, FileSource, HttpSource
from flowfactory.errors import PipelineRunError

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State, TaskRun
    from prefect.tasks import Task

__all__ = [
    "RetryCondition",
    "dependency_of_url",
    "guarded",
    "install_events",
    "notification_breaker",
    "retry_condition",
    "source_breaker",
    "source_dependency",
    "transition_event",
]

R = TypeVar("R")
logger = logging.getLogger(__name__)
RetryCondition = Callable[["Task[..., Any]", "TaskRun", "State[Any]"], Coroutine[Any, Any, bool]]

# Schemes that never leave the machine: no breaker (and no dependency) for them.
_LOCAL_SCHEMES: Final = frozenset({"file", "local", "memory"})
_EVENT_OF: Final = {
    "open": events.CIRCUIT_BREAKER_OPENED,
    "half-open": events.CIRCUIT_BREAKER_HALF_OPENED,
    "closed": events.CIRCUIT_BREAKER_CLOSED,
}


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


def source_breaker(
    source: DatasetSource | FileSource | HttpSource,
    pipeline_config: CircuitBreakerConfig,
    breakers: BreakerRegistry | None = None,
) -> Breaker | None:
    """The process-wide breaker guarding a source, or None if it needs none."""
    found = source_dependency(source, pipeline_config)
    if found is None:
        return None
    breakers = breakers or registry()
    install_events(breakers)
    return breakers.get(*found)


def guarded(breaker: Breaker | None, function: Callable[[], R]) -> R:
    """Call ``function`` through ``breaker`` (directly without one).

    "No files match" is an answer from a dependency that is up: neither failure nor success.
    """
    if breaker is None:
        return function()
    with breaker.guard(ignore=PipelineRunError):
        return function()


def notification_breaker(block_name: str, config: CircuitBreakerConfig | None = None) -> Breaker:
    """The breaker of a notification block (its service is the dependency)."""
    breakers = registry()
    install_events(breakers)
    return breakers.get(f"notify.{block_name}", config)


def retry_condition(dependency: str | None) -> RetryCondition:
    """A ``retry_condition_fn`` that spends no retry on an open circuit or past the budget.

    It is a plain ``async def`` (a closure): Prefect 3.8 calls only functions and awaits
    coroutine functions; a callable object silently disables retries, and a sync function
    calling ``state.result()`` gets a coroutine back and never sees the exception.
    """

    async def retry_unless_circuit_open(
        task: Task[..., Any],  # noqa: ARG001 - Prefect's signature
        task_run: TaskRun,  # noqa: ARG001 - Prefect's signature
        state: State[Any],
    ) -> bool:
        failure = await state.aresult(raise_on_failure=False)
        if isinstance(failure, CircuitOpenError):
            return False
        if dependency is None:
            return True
        return registry().get(dependency).allow_retry()

    return retry_unless_circuit_open


def transition_event(transition: Transition) -> tuple[str, dict[str, str], dict[str, object]]:
    """The event name, resource and payload that announce a transition."""
    resource = events.breaker_resource(transition.dependency)
    payload: dict[str, object] = {
        "dependency": transition.dependency,
        "from": transition.old,
        "to": transition.new,
        "failure_count": transition.failures,
        "retry_after": transition.open_seconds,
        "last_error": transition.last_error,
        "shared": transition.shared,
    }
    return _EVENT_OF[transition.new], resource, payload


def _emit_transition(transition: Transition) -> None:
    name, resource, payload = transition_event(transition)
    events.emit(name, resource, payload)


def _notify(block_name: str, transition: Transition) -> None:
    """Send the "circuit opened" notification (in its own thread: never on the caller's time)."""
    import prefect.blocks.notifications  # noqa: F401, PLC0415 - registers the block classes
    from prefect.blocks.abstract import NotificationBlock  # noqa: PLC0415
    from prefect.blocks.core import Block  # noqa: PLC0415

    subject = f"circuit breaker opened: {transition.dependency}"
    wait = f"{transition.open_seconds:.0f} s" if transition.open_seconds is not None else "a while"
    body = (
        f"{transition.dependency}: {transition.failures} failure(s), last "
        f"{transition.last_error or 'unknown'}; calls are refused for {wait}"
    )

    async def send() -> None:
        block: Block = await Block.aload(block_name)
        if not isinstance(block, NotificationBlock):
            logger.warning("block %r is not a notification block; nobody notified", block_name)
            return
        await block.notify(body=body, subject=subject)

    try:
        asyncio.run(send())
    except Exception as exc:  # noqa: BLE001 - a failed notification must not break anything
        logger.warning("could not notify through block %r: %s", block_name, exc)


def _notifier(breakers: BreakerRegistry) -> Callable[[Transition], None]:
    def notify_on_open(transition: Transition) -> None:
        if transition.new != "open":
            return
        block_name = breakers.get(transition.dependency).config.notify
        if block_name:
            # The caller's context carries Prefect's settings (which API) into the thread.
            context = contextvars.copy_context()
            threading.Thread(
                target=context.run,
                args=(_notify, block_name, transition),
                name="breaker-notify",
                daemon=False,
            ).start()

    return notify_on_open


_installed: set[int] = set()
_installed_lock = threading.Lock()


def install_events(breakers: BreakerRegistry) -> None:
    """Emit a Prefect event on every transition of ``breakers``, and notify on opening
    where the breaker's config names a block (installed once per registry)."""
    with _installed_lock:
        if id(breakers) in _installed:
            return
        _installed.add(id(breakers))
    breakers.add_listener(_emit_transition)
    breakers.add_listener(_notifier(breakers))
