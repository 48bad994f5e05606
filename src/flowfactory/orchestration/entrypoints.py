"""The flows deployments run, by name and by entrypoint (relative to the project)."""

from __future__ import annotations

from typing import Final

__all__ = ["CANARY_ENTRYPOINT", "CANARY_FLOW", "PIPELINE_ENTRYPOINT", "PIPELINE_FLOW"]

PIPELINE_FLOW: Final = "pipeline"
PIPELINE_ENTRYPOINT: Final = "flows/pipeline.py:pipeline"
CANARY_FLOW: Final = "canary"
CANARY_ENTRYPOINT: Final = "flows/canary.py:canary"
