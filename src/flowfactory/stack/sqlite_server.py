"""``prefect server start`` on SQLite, with transactions that take the write lock up front.

Prefect's SQLite set-up (WAL, ``busy_timeout`` of 60 s) makes writers queue for the one write
lock, except in one case: a transaction that begins DEFERRED, reads, and then writes. If another
connection writes in between, SQLite cannot let it write on its old snapshot and answers
"database is locked" at once, without waiting (``busy_timeout`` does not apply). Prefect 3.9
opens the API's read-then-write transactions that way (creating a flow run from a deployment,
which every automation's RunDeployment does; creating a deployment, which every deploy does), so
under a replay they fail against the event persister, the task-run recorder, state changes and
log writes, answer 503, and the client backs off and retries for seconds to minutes.

Here the server's database configuration begins every transaction IMMEDIATE: it takes the write
lock at BEGIN, where ``busy_timeout`` applies, so concurrent writers wait their turn instead of
failing. Reads outside transactions are unchanged (WAL lets them run beside the writer). The
configuration is set through Prefect's own hook (``set_database_config``) before the unchanged
``prefect server start`` command runs in this process.

On SQLite, Prefect also caps the API at 100 requests at once (``RequestLimitMiddleware``), and
counts every open WebSocket as one for as long as it stays open. Each running flow holds two
(events in, and events out for its cancellation watch), so 50 runs at once took every slot:
every HTTP request then waited for a socket to close, the runs' own requests timed out, and
the server stood idle while the runs failed. Here the cap counts HTTP requests only, which are
what reach the database; WebSockets pass beside it.

Usage: ``python -m flowfactory.stack.sqlite_server [prefect server start options]``.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from prefect.server.api import server as api_server
from prefect.server.database.configurations import SQLITE_BEGIN_MODE, AioSqliteConfiguration
from prefect.server.database.dependencies import set_database_config
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction

__all__ = ["HttpRequestLimit", "WriteLockFirstSqliteConfiguration", "main"]


class HttpRequestLimit(api_server.RequestLimitMiddleware):
    """Prefect's cap on concurrent requests, applied to HTTP requests only."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """A WebSocket is served at once; an HTTP request waits for a slot."""
        if scope.get("type") == "websocket":
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class WriteLockFirstSqliteConfiguration(AioSqliteConfiguration):
    """Prefect's SQLite configuration, with every transaction begun IMMEDIATE."""

    @asynccontextmanager
    async def begin_transaction(
        self,
        session: AsyncSession,
        with_for_update: bool = False,  # noqa: ARG002 - Prefect's signature
    ) -> AsyncGenerator[AsyncSessionTransaction, None]:
        """Begin IMMEDIATE whatever the caller asked for: no read-then-write upgrade can fail."""
        token = SQLITE_BEGIN_MODE.set("IMMEDIATE")
        try:
            async with session.begin() as transaction:
                yield transaction
        finally:
            SQLITE_BEGIN_MODE.reset(token)


def main(argv: list[str]) -> int:
    """Run ``prefect server start ARGV`` with the configuration above."""
    from prefect.cli import app  # noqa: PLC0415 - the CLI loads much; only here
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL  # noqa: PLC0415

    url = PREFECT_API_DATABASE_CONNECTION_URL.value()
    if not url or not url.startswith("sqlite"):
        sys.stderr.write(f"flowfactory.stack.sqlite_server serves SQLite only, not {url!r}\n")
        return 2
    set_database_config(WriteLockFirstSqliteConfiguration(connection_url=url))
    # create_app reads the class from its module when it builds the app.
    api_server.RequestLimitMiddleware = HttpRequestLimit  # type: ignore[misc]
    sys.argv = ["prefect", "server", "start", *argv]  # Prefect's CLI reads its arguments there
    app()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
