"""Run flowfactory's reconcile pass from a shell: ``python flows/scheduling.py``: start every
consumer whose inputs changed without a run (after the server was down, say).

The router, reconcile and SLA flows ship in the package (``flowfactory.orchestration.flows``);
their deployments name them by module path.
"""

from __future__ import annotations

from flowfactory.orchestration.flows import reconcile

if __name__ == "__main__":
    print("\n".join(reconcile()) or "nothing to reconcile")
