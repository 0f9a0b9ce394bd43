"""The scoring endpoints' short way in, and the per-answer metrics.

(docs/serving.md, "How requests are run, and batching".)

``POST /predict`` and ``POST /predict_proba`` are most of a service's traffic, and each
request used to cross FastAPI's application stack on its way to the scoring code: the
exception and body-limit middleware, the metrics middleware, the router, the parameter
solving. That walk cost about as much as decoding a 1-row body. :class:`ServeApp` (the app
:func:`~modelrouter.serve.asgi.create_app` builds) hands those two routes straight to
:class:`HotPath`, which answers as the routes do: the same scoring function, the same query
parameters read the same way (the last ``model_type``, every ``keep``), the same error
bodies, the same metrics. Everything else (other routes, other methods, the app mounted
under a prefix) takes FastAPI's way, where :class:`MetricsMiddleware` counts it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from modelrouter.serve.metrics_endpoint import ServeMetrics
from modelrouter.serve.problems import Problem
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HotPath", "MetricsMiddleware", "Mode", "Scorer", "ServeApp"]

log = logging.getLogger("modelrouter.serve")

Mode = Literal["predict", "proba"]
#: The routes' scoring function: request, mode, ``model_type`` and ``keep`` → the answer;
#: raises :class:`Problem` for an error answer.
Scorer = Callable[[Request, Mode, "str | None", "tuple[str, ...]"], Awaitable[Response]]

_MODES: dict[str, Mode] = {"/predict": "predict", "/predict_proba": "proba"}


class HotPath:
    """Answers ``POST /predict`` and ``/predict_proba`` with ``score``, counting each answer."""

    def __init__(self, score: Scorer, metrics: ServeMetrics) -> None:
        self.score = score
        self.metrics = metrics

    @staticmethod
    def mode(scope: Scope) -> Mode | None:
        """The scoring mode of a request this path answers, or ``None`` (FastAPI's way)."""
        mode = _MODES.get(scope.get("path", ""))
        if mode is None or scope["method"] != "POST" or scope.get("root_path"):
            return None
        return mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send, mode: Mode) -> None:
        started = time.perf_counter()
        status = 500
        self.metrics.in_flight.inc()
        try:
            query = QueryParams(scope["query_string"])
            request = Request(scope, receive)
            try:
                response = await self.score(
                    request, mode, query.get("model_type"), tuple(query.getlist("keep"))
                )
            except Problem as exc:
                response = JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)
            except Exception as exc:  # the scoring function answers its own errors: a bug of ours
                log.error("error: internal error: %s: %s", type(exc).__name__, exc, exc_info=True)
                response = JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)
            status = response.status_code
            await response(scope, receive, send)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.answered(scope["path"], status, _model_type(scope), time.perf_counter() - started)


class ServeApp(FastAPI):
    """FastAPI, with :attr:`hot` answering the scoring routes before its middleware stack."""

    hot: HotPath | None = None
    #: Called by the server when a stop begins (its first stop signal): ``/healthz`` then
    #: answers 503 while the requests in flight are being finished.
    on_stop: Callable[[], None] | None = None

    def begin_stop(self) -> None:
        """The server is stopping: tell ``/healthz`` (idempotent)."""
        if self.on_stop is not None:
            self.on_stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.hot
        if hot is not None and scope["type"] == "http":
            mode = hot.mode(scope)
            if mode is not None:
                scope["app"] = self  # what FastAPI's own call sets (request.app)
                await hot(scope, receive, send, mode)
                return
        await super().__call__(scope, receive, send)


class MetricsMiddleware:
    """Counts every answer FastAPI gives by endpoint (the route's path), status and model
    type; times it."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_counting)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            # Unknown paths share one label: clients must not create unbounded label values.
            endpoint = str(getattr(route, "path", "other"))
            self.metrics.answered(endpoint, status, _model_type(scope), time.perf_counter() - started)


def _model_type(scope: Scope) -> str:
    """The model type the request was scored with (set by the route), or ``""``."""
    state: Mapping[str, Any] = scope.get("state") or {}
    return str(state.get("model_type", ""))
