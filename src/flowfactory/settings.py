"""Machine settings: where data and state live and which Prefect API to talk to.

They come from the environment (``FLOWFACTORY_`` prefix), then from ``[tool.flowfactory]`` in
the project's ``pyproject.toml``, then from the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    PyprojectTomlConfigSettingsSource,
    SettingsConfigDict,
)

__all__ = ["Settings", "get_settings"]


def _project_dir() -> Path:
    return Path(os.environ.get("FLOWFACTORY_PROJECT_DIR", Path.cwd())).resolve()


class Settings(BaseSettings):
    """Settings that belong to a machine rather than to a pipeline."""

    model_config = SettingsConfigDict(
        env_prefix="FLOWFACTORY_",
        extra="ignore",
        pyproject_toml_table_header=("tool", "flowfactory"),
    )

    project_dir: Path = Field(
        default_factory=_project_dir,
        description="Root of the project: holds deployments/ and prefect.yaml.",
    )
    data_root: str = Field(
        default="data",
        description="Where datasets and the landing zone live: a folder (relative to the project) "
        "or an fsspec URL.",
    )
    state_dir: Path = Field(
        default=Path(".flowfactory"),
        description="Folder for the local Prefect server's SQLite database and logs.",
    )
    prefect_api_url: str = Field(
        default="http://127.0.0.1:4200/api",
        description="The Prefect API that `up` serves and other verbs use when PREFECT_API_URL "
        "is unset.",
    )
    project_name: str = Field(
        default="flowfactory",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Names this project's deployments (tag project:<name>), so that "
        "`deploy --prune` only ever removes its own.",
    )
    allowed_modules: list[str] = Field(
        default_factory=lambda: ["transforms"],
        description="Module roots from which Python transforms may be imported.",
    )
    flow_heartbeats: bool = Field(
        default=False,
        description="Send Prefect's flow-run heartbeats (for an automation of your own that "
        "spots crashed runs). Off by default: nothing in flowfactory reads them, and stopping "
        "their thread adds up to a second to the end of every run.",
    )
    poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the local worker polls for runs."
    )
    worker_limit: int | None = Field(
        default=None,
        gt=0,
        description="How many flow runs a worker runs at once; unset: no limit. With a limit, "
        "runs scheduled together spread over the workers of a pool.",
    )
    warm_start: bool = Field(
        default=True,
        description="Start the local stack's flow runs as forks of a process that has Prefect "
        "already imported, instead of a new interpreter per run.",
    )
    run_creation_concurrency: int = Field(
        default=4,
        ge=1,
        description="How many run-creation requests an announcement has in flight at once (a "
        "bulk request of up to 50 runs of one consumer counts as one). SQLite serialises "
        "writes, and above 4 the extra requests only wait for its lock; raise it for a server "
        "on PostgreSQL.",
    )
    breakers: bool = Field(
        default=True,
        description="Circuit breakers on external calls; FLOWFACTORY_BREAKERS=false turns them "
        "off (calls go straight through).",
    )
    breaker_redis_url: str | None = Field(
        default=None,
        description="Redis URL holding breaker state shared by every worker; unset: each "
        "process keeps its own.",
    )

    @field_validator("allowed_modules", mode="before")
    @classmethod
    def _split_modules(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env files
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no secret dirs
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        pyproject = PyprojectTomlConfigSettingsSource(
            settings_cls, _project_dir() / "pyproject.toml"
        )
        return (init_settings, env_settings, pyproject)

    @property
    def deployments_dir(self) -> Path:
        """The folder of pipeline files."""
        return self.project_dir / "deployments"

    @property
    def state_path(self) -> Path:
        """The state folder, absolute."""
        return self.state_dir if self.state_dir.is_absolute() else self.project_dir / self.state_dir

    @property
    def data_root_url(self) -> str:
        """The data root as an absolute local path or an fsspec URL."""
        if "://" in self.data_root:
            return self.data_root.rstrip("/")
        root = Path(self.data_root)
        return str(root if root.is_absolute() else self.project_dir / root)

    @property
    def api_host_port(self) -> tuple[str, int]:
        """Host and port of ``prefect_api_url``, for starting the local server."""
        parts = urlsplit(self.prefect_api_url)
        return parts.hostname or "127.0.0.1", parts.port or 4200

    @property
    def ui_url(self) -> str:
        """The address of the Prefect UI served with the API."""
        host, port = self.api_host_port
        return f"http://{host}:{port}"


def get_settings() -> Settings:
    """Read the settings afresh (the environment may change between calls in tests)."""
    return Settings()
