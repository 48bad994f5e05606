"""flowfactory's Prefect block types: ``prefect block register -m flowfactory.blocks``."""

from __future__ import annotations

from flowfactory.blocks.http_api import HttpJsonApi

__all__ = ["HttpJsonApi"]
