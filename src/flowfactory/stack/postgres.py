"""A PostgreSQL cluster of the stack's own for the Prefect database: ``initdb`` in the state
folder, the server on a free loopback port with its unix socket in the same folder.

PostgreSQL refuses to run as root, so when we are root its programs run as the ``postgres``
system account (Debian's package creates it) and the cluster's folder belongs to that account.
This module only builds the commands and prepares the folder; the stack runs them.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from flowfactory.errors import StackError

__all__ = ["DATABASE", "ROLE", "SYSTEM_ACCOUNT", "PostgresCluster", "find_postgres_bin"]

SYSTEM_ACCOUNT: Final = "postgres"
ROLE: Final = "prefect"
DATABASE: Final = "prefect"
_MAX_SOCKET_DIR: Final = 90  # sun_path holds 108 bytes, and the file is named .s.PGSQL.<port>
_DEBIAN_ROOT: Final = Path("/usr/lib/postgresql")
_TOOLS: Final = ("initdb", "postgres", "pg_isready", "psql")


def find_postgres_bin() -> Path:
    """The folder of PostgreSQL's programs: where ``initdb`` on PATH links to, else Debian's
    newest ``/usr/lib/postgresql/<major>/bin`` (Debian keeps them off PATH)."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path is not None else []
    candidates += sorted(
        _DEBIAN_ROOT.glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in candidates:
        if all((folder / tool).exists() for tool in _TOOLS):
            return folder
    raise StackError(
        f"PostgreSQL is not installed: no folder with {', '.join(_TOOLS)} on PATH or in "
        f"{_DEBIAN_ROOT}/*/bin (Debian/Ubuntu: apt-get install postgresql)"
    )


@dataclass(frozen=True)
class PostgresCluster:
    """One cluster in ``folder`` (``data/`` and the unix socket) serving ``port`` on loopback."""

    folder: Path
    port: int
    bin_dir: Path
    euid: int = field(default_factory=os.geteuid)

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        """Where the server puts its unix socket: the folder, or a short path outside it when
        the folder's path is too long for a socket address."""
        if len(str(self.folder)) <= _MAX_SOCKET_DIR:
            return self.folder
        digest = hashlib.sha256(str(self.folder).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"flowfactory-pg-{digest}"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL Prefect connects with (asyncpg, trust on loopback)."""
        return f"postgresql+asyncpg://{ROLE}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def initialized(self) -> bool:
        """Whether ``initdb`` has run (a previous start left the cluster here)."""
        return (self.data_dir / "PG_VERSION").exists()

    def _as_server_account(self) -> list[str]:
        # setpriv execs the program, so the process we start is the server itself and our
        # stop signal reaches it directly (runuser would stay in between as a parent).
        if self.euid != 0:
            return []
        return [
            "setpriv",
            f"--reuid={SYSTEM_ACCOUNT}",
            f"--regid={SYSTEM_ACCOUNT}",
            "--init-groups",
        ]

    def prepare_folder(self) -> None:
        """Create the folders; when root, hand them to the ``postgres`` account and check that
        it can reach them."""
        for folder in {self.folder, self.socket_dir}:
            folder.mkdir(parents=True, exist_ok=True)
        if self.euid != 0:
            return
        try:
            account = pwd.getpwnam(SYSTEM_ACCOUNT)
        except KeyError:
            raise StackError(
                f"PostgreSQL refuses to run as root and there is no `{SYSTEM_ACCOUNT}` account to "
                "run it as (apt-get install postgresql creates it)"
            ) from None
        for folder in {self.folder, self.socket_dir}:
            for path in [folder, *folder.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid)
        reach = subprocess.run(
            [*self._as_server_account(), "test", "-w", str(self.folder)], check=False
        )
        if reach.returncode != 0:
            raise StackError(
                f"PostgreSQL runs as the `{SYSTEM_ACCOUNT}` account, which cannot reach "
                f"{self.folder}: let it through every folder above (chmod o+x), or set "
                "FLOWFACTORY_STATE_DIR to a folder it can reach"
            )

    def initdb_argv(self) -> list[str]:
        """Create the cluster: role ``prefect`` as superuser, trusted on loopback only."""
        return [
            *self._as_server_account(),
            str(self.bin_dir / "initdb"),
            "--pgdata",
            str(self.data_dir),
            "--username",
            ROLE,
            "--auth-local=trust",
            "--auth-host=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ]

    def server_argv(self) -> list[str]:
        """Run the server in the foreground, on loopback and the folder's socket only."""
        return [
            *self._as_server_account(),
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            "-c",
            "listen_addresses=127.0.0.1",
        ]

    def _psql(self, database: str, sql: str) -> list[str]:
        return [
            str(self.bin_dir / "psql"),
            "--no-psqlrc",
            "--quiet",
            "--tuples-only",
            "--no-align",
            "--set=ON_ERROR_STOP=1",
            "--host=127.0.0.1",
            f"--port={self.port}",
            f"--username={ROLE}",
            f"--dbname={database}",
            f"--command={sql}",
        ]

    def ready_argv(self) -> list[str]:
        """Exits 0 once the server accepts connections."""
        return [
            str(self.bin_dir / "pg_isready"),
            "--quiet",
            "--host=127.0.0.1",
            f"--port={self.port}",
            f"--username={ROLE}",
        ]

    def database_exists_argv(self) -> list[str]:
        """Prints ``1`` when the Prefect database exists."""
        query = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"  # noqa: S608 - a constant
        return self._psql("postgres", query)

    def create_database_argv(self) -> list[str]:
        """Create the Prefect database."""
        return self._psql("postgres", f"CREATE DATABASE {DATABASE}")

    def create_extension_argv(self) -> list[str]:
        """pg_trgm (contrib) backs Prefect's name-search indexes. Its migrations would create it
        as superuser; created here, as on a server where Prefect's role may not create it."""
        return self._psql(DATABASE, "CREATE EXTENSION IF NOT EXISTS pg_trgm")
