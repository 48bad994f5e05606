"""Run the canary of one pipeline of this project from a shell: ``python flows/canary.py NAME``.

The flow ships in the package (``flowfactory.orchestration.flows``); the ``<name>-canary``
deployments name it by module path.
"""

from __future__ import annotations

import sys

from flowfactory.orchestration.flows import canary

if __name__ == "__main__":
    canary(sys.argv[1])
