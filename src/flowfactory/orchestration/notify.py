"""Sending a message through a Prefect notification block (Slack, e-mail, ...), never failing.

A failed notification is logged and swallowed: it must not hide the SLA miss or the open circuit
it was about.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

# Importing the module registers Prefect's notification block classes, so that loading a
# document by its `<type slug>/<name>` gives the concrete class.
import prefect.blocks.notifications  # noqa: F401
from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.core import Block
from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging import get_run_logger

if TYPE_CHECKING:
    from flowfactory.breaker import Breaker

__all__ = ["notify"]

logger = logging.getLogger(__name__)


async def notify(
    block_name: str,
    subject: str,
    body: str,
    *,
    breaker: Callable[[str], Breaker] | None = None,
) -> bool:
    """Send through the block ``<type slug>/<name>``; True when it was sent.

    ``breaker`` gives the breaker of the notification service: a failing service is then
    called no more than its circuit allows.
    """
    log = _logger()
    try:
        block: Block = await Block.aload(block_name)
        if not isinstance(block, NotificationBlock):
            log.warning("block %r is not a notification block; nobody notified", block_name)
            return False
        if breaker is None:
            await block.notify(body=body, subject=subject)
        else:
            await breaker(block_name).acall(block.notify, body=body, subject=subject)
    except Exception as exc:  # noqa: BLE001 - a failed notification must not hide what it reports
        log.warning("could not notify through block %r: %s", block_name, exc)
        return False
    return True


def _logger() -> logging.Logger | logging.LoggerAdapter[Any]:
    """The run's logger inside a flow or task run (its lines show in the UI), else this module's."""
    if FlowRunContext.get() or TaskRunContext.get():
        return get_run_logger()
    return logger
