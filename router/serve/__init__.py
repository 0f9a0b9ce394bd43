"""``modelrouter serve``: the router as an HTTP service (docs/specification.md §10).

:func:`create_app` builds the FastAPI app (mountable and testable on its own);
:func:`serve` runs it on uvicorn with a graceful stop. No typer or rich here.
"""

from __future__ import annotations

from modelrouter.serve.asgi import LoadedPools, ServeConfig, create_app, load_pools
from modelrouter.serve.server import Stop, serve

__all__ = ["LoadedPools", "ServeConfig", "Stop", "create_app", "load_pools", "serve"]
