"""Where breakers meet Prefect: the breaker of a source or a notification service, the retry
condition that spends no retry on an open circuit, and the events and notifications that
announce each transition."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final

from flowfactory.breaker import Breaker, BreakerRegistry, Transition, registry, source_dependency
from flowfactory.config import CircuitBreakerConfig, DatasetSource, FileSource, HttpSource
from flowfactory.errors import CircuitOpenError
from flowfactory.orchestration import events
from flowfactory.orchestration.notify import notify

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State, TaskRun
    from prefect.tasks import Task

__all__ = [
    "RetryCondition",
    "install_events",
    "notification_breaker",
    "retry_condition",
    "source_breaker",
    "transition_event",
]

RetryCondition = Callable[["Task[..., Any]", "TaskRun", "State[Any]"], Coroutine[Any, Any, bool]]

_EVENT_OF: Final = {
    "open": events.CIRCUIT_BREAKER_OPENED,
    "half-open": events.CIRCUIT_BREAKER_HALF_OPENED,
    "closed": events.CIRCUIT_BREAKER_CLOSED,
}


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
    subject = f"circuit breaker opened: {transition.dependency}"
    wait = f"{transition.open_seconds:.0f} s" if transition.open_seconds is not None else "a while"
    body = (
        f"{transition.dependency}: {transition.failures} failure(s), last "
        f"{transition.last_error or 'unknown'}; calls are refused for {wait}"
    )
    asyncio.run(notify(block_name, subject, body))


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
