"""Run one pipeline of this project from a shell, outside any deployment:
``python flows/pipeline.py NAME [PARTITION]``.

The flow itself ships in the package (``flowfactory.orchestration.flows``); deployments name it
by module path, so this file is a convenience for local debugging, not an entrypoint they need.
"""

from __future__ import annotations

import sys

from flowfactory.orchestration.flows import pipeline

if __name__ == "__main__":
    pipeline(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
