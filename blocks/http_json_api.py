"""flowfactory's HTTP JSON API block, for ``prefect block register -f blocks/http_json_api.py``.

The class lives in the installed package, so workers load it wherever they run; from anywhere,
``prefect block register -m flowfactory.blocks`` registers the same types.
"""

from __future__ import annotations

from flowfactory.blocks import HttpJsonApi

__all__ = ["HttpJsonApi"]
