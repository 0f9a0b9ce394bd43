"""The FastAPI app of ``modelrouter serve`` (docs/specification.md §10), built by :func:`create_app`.

The app can be served by ``modelrouter serve``, mounted in another ASGI app or tested on its
own. Its lifespan loads one pool per configured type with the same loader as the batch CLI
(:func:`modelrouter.load_settings` / :func:`modelrouter.load_pool`) and registers them with
the router (the process's, unless one is passed); on shutdown, after the requests in flight
have been answered, it closes them.

Concurrency is bounded by the pools. Without batching, a scoring request borrows with
``async with router.acquire_model(kind, timeout=…)``: it waits in the pool's own line, on a
future of the event loop, and that wait is what ``--timeout`` bounds (then 503 +
``Retry-After``), counted in the pool's ``waits``/``timeouts``. It then runs the model in the
app's own thread pool, one thread per instance: inference never blocks the event loop and
never competes with the default executor. With batching (:mod:`~modelrouter.serve.batching`)
requests wait in the batcher's queue, which reports its waits to the pool the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import orjson
import pyarrow as pa
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from modelrouter import (
    ConfigError,
    DataError,
    ModelPool,
    ModelRouter,
    ModelRouterError,
    ModelType,
    get_router,
    load_pool,
    load_settings,
)
from modelrouter.backends import Prediction
from modelrouter.explain import Explainer, Explanation
from modelrouter.locations import model_location
from modelrouter.model_type import model_type_names
from modelrouter.pool import BorrowedModel
from modelrouter.serve.batching import DEFAULT_WINDOW, Arrival, Batcher
from modelrouter.serve.bodies import (
    MEDIA_TYPE,
    BodyFormat,
    body_format,
    csv_table,
    encode_table,
    json_form,
    json_table,
    parquet_table,
    result_table,
)
from modelrouter.serve.hot_path import HotPath, MetricsMiddleware, Mode, ServeApp
from modelrouter.serve.inline_calls import DEFAULT_BUDGET
from modelrouter.serve.metrics_endpoint import CONTENT_TYPE, ServeMetrics
from modelrouter.serve.problems import Problem, Where, problem_for
from modelrouter.serve.schemas import (
    ErrorResponse,
    ExplainResponse,
    HealthResponse,
    PoolStatsResponse,
    PredictResponse,
    ProbaResponse,
    request_schema,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

__all__ = ["LoadedPools", "ServeConfig", "create_app", "load_pools"]

log = logging.getLogger("modelrouter.serve")

# JSON bodies up to this size are decoded on the event loop (a thread hop costs more than
# decoding them); larger ones, and answers with more values, in the decoding threads, so a
# big body never stalls the small requests behind it.
_DECODE_ON_LOOP_BYTES = 16 << 10
_ENCODE_ON_LOOP_VALUES = 2048
_ORJSON_DTYPES = frozenset(
    np.dtype(t).str for t in ("f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "?")
)
#: Adaptive batching's default rows per model call (``serve --max-batch-rows``).
DEFAULT_BATCH_ROWS = 8192
#: The status counted for a request whose client left before its body was complete.
CLIENT_CLOSED = 499
#: Names the process that answered, when several serve one port (``"1/2"``).
PROCESS_HEADER = "X-Modelrouter-Process"
T = TypeVar("T")


@dataclass(frozen=True)
class ServeConfig:
    """The service's settings (``modelrouter serve``'s options)."""

    config: Path | None = None  # None: the usual search ($MODELROUTER_CONFIG, ./modelrouter.toml, built-in)
    pool_size: int | None = None  # instances per pool, overriding the config
    timeout: float = 10.0  # seconds a request may wait for a free instance before a 503
    max_rows: int = 100_000  # rows per request; more is a 413
    max_body_bytes: int = 32 << 20  # request body size; more is a 413
    retry_after: int = 1  # seconds, in the Retry-After header of a 503
    debug: bool = False  # log tracebacks of internal errors
    # Score requests already waiting for the same pool together, up to this many rows per
    # model call (batching.py); a lone request is never delayed. 0: every request borrows alone.
    max_batch_rows: int = DEFAULT_BATCH_ROWS
    # Seconds a batch may wait for requests already on their way to it (being received or
    # decoded); never waited when there are none, so a lone request is never delayed.
    batch_window: float = DEFAULT_WINDOW
    # Seconds of CPU a small batch's model call may have cost (each of the last few) to be
    # run on the event loop itself rather than in an inference thread (inline_calls.py);
    # 0: always in a thread.
    inline_budget: float = DEFAULT_BUDGET
    # Serve this model file alone (its type from -t, else its suffix), as ``predict -m`` scores
    # with it: the configured pin does not apply to it, ``sha256`` does (docs/specification.md §3).
    model: str | None = None
    model_type: ModelType | str | None = None  # the default type (with ``model``: that file's type)
    sha256: str | None = None  # refuse to load ``model`` unless its digest is this

    def __post_init__(self) -> None:
        # The batch engine's checks: the same values are refused alike (InvalidOptionError,
        # a ValueError; the command's usage error).
        from modelrouter.batch import option_checks
        from modelrouter.errors import InvalidOptionError

        object.__setattr__(self, "model_type", option_checks.model_type(self.model_type))
        object.__setattr__(self, "sha256", option_checks.sha256(self.sha256))
        if self.sha256 is not None and self.model is None:
            raise InvalidOptionError("--sha256", "applies to a model given with --model")
        if self.pool_size is not None and self.pool_size < 1:
            raise InvalidOptionError("--pool-size", f"must be at least 1 (got {self.pool_size})")
        if not self.timeout >= 0:  # NaN too
            raise InvalidOptionError("--timeout", f"must be a number ≥ 0 seconds (got {self.timeout})")
        if self.max_rows < 1:
            raise InvalidOptionError("--max-rows", f"must be at least 1 (got {self.max_rows})")
        if self.max_batch_rows < 0:
            raise InvalidOptionError("--max-batch-rows", f"must be ≥ 0 (got {self.max_batch_rows})")
        if not self.batch_window >= 0:  # NaN too
            raise InvalidOptionError(
                "batch_window", f"must be a number ≥ 0 seconds (got {self.batch_window})"
            )
        if not self.inline_budget >= 0:  # NaN too
            raise InvalidOptionError(
                "inline_budget", f"must be a number ≥ 0 seconds (got {self.inline_budget})"
            )
        if self.max_body_bytes < 1:
            raise InvalidOptionError("--max-body-bytes", f"must be at least 1 (got {self.max_body_bytes})")


@dataclass
class LoadedPools:
    """One loaded pool per configured model type, and the default type."""

    pools: dict[ModelType, ModelPool]
    default_type: ModelType | None

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()


def load_pools(config: ServeConfig) -> LoadedPools:
    """Load every configured type's pool (``enable_onnx = false``: no ONNX pool).

    Raises :class:`ConfigError` / :class:`ModelError` like the batch CLI (and a
    :class:`ConfigError` when no type is configured); pools loaded before a failure are closed.
    """
    settings = load_settings(config.config)
    if config.model is not None:
        kind = ModelType.parse(config.model_type) if config.model_type else ModelType.from_path(config.model)
        loaded = LoadedPools({}, kind)
        loaded.pools[kind] = load_pool(
            settings,
            kind,
            path=model_location(config.model),
            pool_size=config.pool_size,
            sha256=config.sha256,
        )
        return loaded
    if not settings.models:
        raise ConfigError(f"{settings.source}: no model type is configured; there is nothing to serve")
    default = settings.default_model_type
    if config.model_type is not None:
        default = ModelType.parse(config.model_type)
        settings.model(default)  # raises, naming the configured types
    loaded = LoadedPools({}, default)
    try:
        for kind in settings.models:
            loaded.pools[kind] = load_pool(settings, kind, pool_size=config.pool_size)
    except BaseException:
        loaded.close()
        raise
    return loaded


@dataclass
class _Service:
    """What the endpoints share: the router, the limits, the thread pools and the batchers."""

    config: ServeConfig
    router: ModelRouter
    metrics: ServeMetrics
    types: tuple[ModelType, ...] = ()
    inference: ThreadPoolExecutor | None = None
    decoding: ThreadPoolExecutor | None = None
    process_headers: dict[str, str] = field(default_factory=dict)  # which of several processes
    batchers: dict[ModelType, Batcher] = field(default_factory=dict)
    explainers: dict[ModelType, Explainer] = field(default_factory=dict)
    ready: bool = False

    def resolve(self, name: str | None) -> ModelType:
        """The requested type, or the default; 404 when no pool serves it."""
        if name is None:
            kind = self.router.default_type
            if kind is None or kind not in self.types:
                raise Problem(
                    404, f"no model_type given and no default type (available: {self._available()})"
                )
            return kind
        try:
            kind = ModelType.parse(name)
        except ModelRouterError:
            kind = None
        if kind is None or kind not in self.types:
            raise Problem(404, f"no pool for model type {name!r} (available: {self._available()})")
        return kind

    def _available(self) -> str:
        return ", ".join(self.types) or "none"

    async def offload(self, function: Callable[..., T], *args: Any) -> T:
        """Run body decoding/encoding off the event loop (not on the inference threads)."""
        assert self.decoding is not None
        return await asyncio.get_running_loop().run_in_executor(self.decoding, partial(function, *args))

    def arriving(self, kind: ModelType) -> AbstractContextManager[Arrival | None]:
        """Around reading and decoding a scoring request: with batching, the dispatchers of
        ``kind`` may wait for it (batching.py); without, nothing."""
        batcher = self.batchers.get(kind)
        return nullcontext() if batcher is None else batcher.arriving()

    async def infer(
        self,
        kind: ModelType,
        table: pa.Table,
        *,
        probabilities: bool,
        exclude: tuple[str, ...],
        arrival: Arrival | None = None,
    ) -> Prediction:
        """Wait (≤ ``timeout``) for an instance of ``kind``, borrow it, score ``table`` in a thread."""
        timeout = self.config.timeout
        batcher = self.batchers.get(kind)
        if batcher is not None:
            return await batcher.infer(
                table, probabilities=probabilities, exclude=exclude, timeout=timeout, arrival=arrival
            )

        def work(model: Any) -> Prediction:
            result: Prediction = model.run(
                table, labels=not probabilities, probabilities=probabilities, exclude=exclude
            )
            return result

        return await self.borrowed(kind, work)

    async def explain(self, kind: ModelType, table: pa.Table, exclude: tuple[str, ...]) -> Explanation:
        """Explain ``table`` with a borrowed instance of ``kind`` (the method is chosen once
        per model type, on the first request)."""
        explainer = self.explainers.get(kind)
        if explainer is None:
            from modelrouter.explain import explainer_for

            explainer = await self.offload(explainer_for, self.router.pool(kind).prototype)
            self.explainers[kind] = explainer
        chosen = explainer

        def work(model: BorrowedModel) -> Explanation:
            with model.tracked(table.num_rows):  # the pool's rows count explained rows too
                return chosen.explain(model, table, exclude=exclude)

        return await self.borrowed(kind, work)

    async def borrowed(self, kind: ModelType, work: Callable[[Any], T]) -> T:
        """Wait (≤ ``timeout``) for an instance of ``kind``, borrow it, run ``work(instance)``
        in an inference thread."""
        started = time.perf_counter()
        # The pool's own line (FIFO, on a future of this loop: no thread held while waiting)
        # is where a request waits, so its waits and timeouts are the pool's stats.
        async with self.router.acquire_model(kind, timeout=self.config.timeout) as model:
            self.metrics.queue_wait.labels(str(kind)).observe(time.perf_counter() - started)
            assert self.inference is not None
            running = asyncio.get_running_loop().run_in_executor(self.inference, partial(work, model))
            try:
                outcome: Any = await asyncio.shield(running)
            except asyncio.CancelledError:
                # The thread still uses the instance: it goes back only when that is done.
                await asyncio.wait([running])
                raise
            except DataError as exc:
                # The client's fault (422): the borrow ends normally, so the pool's
                # ``errors`` count model failures only (clients' are in /metrics).
                outcome = exc
        if isinstance(outcome, DataError):
            raise outcome
        result: T = outcome
        return result


def create_app(
    config: ServeConfig | None = None,
    *,
    router: ModelRouter | None = None,
    pools: LoadedPools | None = None,
    process: str | None = None,
    shared_metrics: str | None = None,
) -> ServeApp:
    """The service as an ASGI app.

    ``router``: where the pools are registered (default: the process's :func:`get_router`).
    ``pools``: pools already loaded (``modelrouter serve`` loads them first, so a bad config
    fails with the CLI's error line and exit code); without them the lifespan loads them.
    Either way the app owns them from start-up on and closes them at shutdown.
    ``process``: which of several processes serving one port this is (``"2/4"``), told in the
    ``X-Modelrouter-Process`` header of ``/pool/stats``, ``/healthz`` and ``/metrics``, whose
    answers describe that process alone (docs/serving.md, "Several processes"), except
    ``/metrics`` when ``shared_metrics`` is given: the folder where every process of the
    service writes its metrics (this process's ``PROMETHEUS_MULTIPROC_DIR``), summed by
    ``/metrics`` (:mod:`~modelrouter.serve.metrics_endpoint`).
    """
    config = config or ServeConfig()
    target = router or get_router()
    service = _Service(config, target, ServeMetrics(target.stats, shared=shared_metrics))
    if process is not None:
        service.process_headers = {PROCESS_HEADER: process}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = pools if pools is not None else await asyncio.to_thread(load_pools, config)
        for kind, pool in loaded.pools.items():
            target.register(kind, pool)
        target.default_type = loaded.default_type
        service.types = tuple(loaded.pools)
        threads = sum(pool.size for pool in loaded.pools.values()) or 1
        service.inference = ThreadPoolExecutor(threads, thread_name_prefix="modelrouter-serve")
        service.decoding = ThreadPoolExecutor(2, thread_name_prefix="modelrouter-serve-io")
        if config.max_batch_rows:
            for kind, pool in loaded.pools.items():
                service.batchers[kind] = Batcher(
                    target,
                    kind,
                    instances=pool.size,
                    max_rows=config.max_batch_rows,
                    window=config.batch_window,
                    inline_budget=config.inline_budget,
                    executor=service.inference,
                    on_batch=partial(_observe_batch, service.metrics, str(kind)),
                )
                service.batchers[kind].start()
        service.ready = True
        publishing = (
            asyncio.create_task(_publish_pools(service.metrics), name="modelrouter-pool-metrics")
            if service.metrics.shared
            else None
        )
        try:
            yield
        finally:
            # The server has answered the requests in flight before it runs this.
            service.ready = False
            if publishing is not None:
                publishing.cancel()
                await asyncio.gather(publishing, return_exceptions=True)
                service.metrics.publish_pools()  # the running totals as they end
            for batcher in service.batchers.values():
                await batcher.stop()
            service.batchers.clear()
            service.inference.shutdown(wait=True)
            service.decoding.shutdown(wait=True)
            for kind in service.types:
                target.unregister(kind)

    app = ServeApp(
        title="modelrouter",
        summary="Score rows with pooled scikit-learn and ONNX models.",
        lifespan=lifespan,
        # FastAPI's pages load Swagger UI and ReDoc from a CDN: /docs is served with the
        # assets installed with the package instead (offline machines, air-gapped clusters).
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.on_stop = partial(setattr, service, "ready", False)
    # The scoring routes' short way in; FastAPI's way (below) stays for every other request.
    app.hot = HotPath(partial(_score, service), service.metrics)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    _install_error_handlers(app)
    _add_routes(app, service)
    _add_docs(app)
    return app


#: Where /docs finds Swagger UI's files (the fastapi-offline package's ``static`` folder).
DOCS_ASSETS = "/docs/assets"


def _add_docs(app: FastAPI) -> None:
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html
    from starlette.staticfiles import StaticFiles

    # Swagger UI 5 (fastapi-offline ships it): Swagger UI 4 cannot read the OpenAPI 3.1
    # document FastAPI writes and shows "Unable to render this definition" instead of the
    # operations. tests/serve/test_serve_docs_browser.py renders the page in a browser.
    assets = files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="modelrouter — API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )


#: Seconds between two publications of a process's pool figures to the others (shared metrics).
POOL_METRICS_PERIOD = 1.0


async def _publish_pools(metrics: ServeMetrics) -> None:
    while True:
        metrics.publish_pools()
        await asyncio.sleep(POOL_METRICS_PERIOD)


def _observe_batch(metrics: ServeMetrics, kind: str, waits: list[float]) -> None:
    metrics.batch_requests.labels(kind).observe(len(waits))
    wait = metrics.queue_wait.labels(kind)
    for seconds in waits:
        wait.observe(seconds)


# -- endpoints ---------------------------------------------------------------------------------

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "Malformed body.",
        404: "No pool for that model type.",
        413: "Body larger than the limit, or more rows than --max-rows.",
        415: "Unsupported Content-Type.",
        422: "A missing feature column or a value that cannot be converted (column and 0-based row).",
        503: "No model instance became free within --timeout (see Retry-After).",
    }.items()
}


def _request_body_doc() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": request_schema()},
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }


ModelTypeQuery = Annotated[
    str | None, Query(description=f"The pool to route to ({model_type_names()}); default: the config's.")
]
KeepQuery = Annotated[
    list[str] | None,
    Query(description="CSV/Parquet bodies: copy this column to the answer, before the predictions."),
]


def _add_routes(app: FastAPI, service: _Service) -> None:
    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses=_ERRORS,
        openapi_extra=_request_body_doc(),
        summary="Labels (regressors: values), one per row",
    )
    async def predict(
        request: Request, model_type: ModelTypeQuery = None, keep: KeepQuery = None
    ) -> Response:
        return await _score(service, request, "predict", model_type, tuple(keep or ()))

    @app.post(
        "/predict_proba",
        response_model=ProbaResponse,
        responses=_ERRORS,
        openapi_extra=_request_body_doc(),
        summary="Class probabilities, one list per row",
    )
    async def predict_proba(
        request: Request, model_type: ModelTypeQuery = None, keep: KeepQuery = None
    ) -> Response:
        return await _score(service, request, "proba", model_type, tuple(keep or ()))

    @app.post(
        "/explain",
        response_model=ExplainResponse,
        responses=_ERRORS,
        openapi_extra=_request_body_doc(),
        summary="Exact per-row contributions of each input column (SHAP values)",
    )
    async def explain(
        request: Request, model_type: ModelTypeQuery = None, keep: KeepQuery = None
    ) -> Response:
        return await _explain(service, request, model_type, tuple(keep or ()))

    @app.get(
        "/pool/stats", response_model=PoolStatsResponse, summary="Pool statistics (docs/specification.md §6)"
    )
    async def pool_stats(response: Response) -> dict[str, Any]:
        response.headers.update(service.process_headers)
        default = service.router.default_type
        return {
            "default_model_type": None if default is None else str(default),
            "pools": {str(kind): s.as_dict() for kind, s in service.router.stats().items()},
        }

    @app.get("/healthz", response_model=HealthResponse, responses={503: {"model": ErrorResponse}})
    async def healthz(response: Response) -> Any:
        if not service.ready:
            raise Problem(
                503,
                "not ready (starting or stopping)",
                headers={"Retry-After": "1", **service.process_headers},
            )
        response.headers.update(service.process_headers)
        return {"status": "ok", "model_types": [str(t) for t in service.types]}

    @app.get("/metrics", summary="Prometheus text format", response_class=Response)
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE, headers=service.process_headers)


async def _score(
    service: _Service, request: Request, mode: Mode, model_type: str | None, keep: tuple[str, ...]
) -> Response:
    kind = service.resolve(model_type)
    request.state.model_type = str(kind)
    endpoint = "/predict" if mode == "predict" else "/predict_proba"
    fmt = body_format(request.headers.get("content-type"))
    if keep and fmt == "json":
        raise Problem(
            400,
            "keep applies to CSV and Parquet bodies (their answer is a table); a JSON answer "
            "holds predictions only, in request order",
        )
    body = b""
    try:
        pool = service.router.pool(kind)
        if mode == "proba":
            pool.prototype.require_probabilities()
        with service.arriving(kind) as arrival:
            body = await _read_body(request, service.config.max_body_bytes)
            table = await _decoded(service, body, fmt, pool, keep)
            if table is None:  # an empty JSON body: the model is not asked (and needs no column)
                return _json_answer(kind, mode, Prediction(None, None), pool.prototype.classes)
            prediction = await service.infer(
                kind, table, probabilities=mode == "proba", exclude=keep, arrival=arrival
            )
        service.metrics.rows.labels(endpoint, str(kind)).inc(table.num_rows)
        if fmt == "json":
            proba = prediction.probabilities
            values = table.num_rows * (1 if proba is None else proba.shape[1])
            if values <= _ENCODE_ON_LOOP_VALUES:
                return _json_answer(kind, mode, prediction, pool.prototype.classes)
            return await service.offload(_json_answer, kind, mode, prediction, pool.prototype.classes)
        classes = None if pool.prototype.classes is None else pool.prototype.classes.tolist()
        answer = await service.offload(_encode, table, keep, prediction, classes, fmt)
        return Response(answer, media_type=MEDIA_TYPE[fmt])
    except Problem:
        raise
    except ModelRouterError as exc:
        where: Where = "row"
        if fmt == "json" and isinstance(exc, DataError) and exc.row is not None:
            where = json_form(body)  # the body was valid JSON: it got as far as its values
        raise problem_for(exc, where=where, retry_after=service.config.retry_after) from None
    except Exception as exc:
        log.error(
            "error: internal error while scoring: %s: %s",
            type(exc).__name__,
            exc,
            exc_info=service.config.debug,
        )
        raise Problem(500, f"internal error: {type(exc).__name__}: {exc}") from None


async def _decoded(
    service: _Service, body: bytes, fmt: BodyFormat, pool: ModelPool, keep: tuple[str, ...]
) -> pa.Table | None:
    """The rows of a request body (None: an empty JSON body)."""
    if fmt == "json":
        if len(body) <= _DECODE_ON_LOOP_BYTES:
            return json_table(body, service.config.max_rows, pool.schema)
        return await service.offload(json_table, body, service.config.max_rows, pool.schema)
    if fmt == "csv":
        return await service.offload(csv_table, body, service.config.max_rows, pool.schema, keep)
    return await service.offload(parquet_table, body, service.config.max_rows)


async def _explain(
    service: _Service, request: Request, model_type: str | None, keep: tuple[str, ...]
) -> Response:
    """``POST /explain``: the ``/predict`` bodies in, per-row contributions out (JSON)."""
    kind = service.resolve(model_type)
    request.state.model_type = str(kind)
    fmt = body_format(request.headers.get("content-type"))
    if keep:
        # Its answer is JSON whatever the body: a kept column would be silently dropped.
        raise Problem(
            400,
            "keep applies to the CSV and Parquet answers of /predict and /predict_proba; an "
            "/explain answer is JSON, one entry per row in request order",
        )
    body = b""
    try:
        pool = service.router.pool(kind)
        body = await _read_body(request, service.config.max_body_bytes)
        table = await _decoded(service, body, fmt, pool, keep)
        if table is None:
            table = pa.table({name: pa.array([], pa.float64()) for name in pool.schema.names or ()})
        explanation = await service.explain(kind, table, keep)
        service.metrics.rows.labels("/explain", str(kind)).inc(table.num_rows)
        return await service.offload(_explanation_answer, kind, explanation)
    except Problem:
        raise
    except ModelRouterError as exc:
        where: Where = "row"
        if fmt == "json" and isinstance(exc, DataError) and exc.row is not None:
            where = json_form(body)
        raise problem_for(exc, where=where, retry_after=service.config.retry_after) from None
    except Exception as exc:
        log.error(
            "error: internal error while explaining: %s: %s",
            type(exc).__name__,
            exc,
            exc_info=service.config.debug,
        )
        raise Problem(500, f"internal error: {type(exc).__name__}: {exc}") from None


def _explanation_answer(kind: ModelType, explanation: Explanation) -> Response:
    payload: dict[str, Any] = {
        "model_type": str(kind),
        "space": str(explanation.space),
        "columns": list(explanation.columns),
        "base": np.ascontiguousarray(explanation.base),
        "contributions": np.ascontiguousarray(explanation.contributions),
    }
    if explanation.explained_class is not None:
        payload["explained_class"] = _json_ready(explanation.explained_class)
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


def _encode(
    table: pa.Table, keep: tuple[str, ...], prediction: Prediction, classes: list[Any] | None, fmt: BodyFormat
) -> bytes:
    return encode_table(result_table(table, keep, prediction, classes), fmt)


def _json_answer(
    kind: ModelType, mode: Mode, prediction: Prediction, classes: np.ndarray[Any, Any] | None
) -> Response:
    payload: dict[str, Any] = {"model_type": str(kind)}
    if mode == "proba":
        payload["classes"] = [] if classes is None else _json_ready(classes)
        proba = prediction.probabilities
        payload["probabilities"] = [] if proba is None else _json_ready(proba)
    else:
        labels = prediction.labels
        payload["predictions"] = [] if labels is None else _json_ready(labels)
    # orjson writes numeric arrays directly (floats in their shortest form for their own
    # dtype, so a float32 probability reads 0.84, not 0.8399999737739563); JSON has no
    # NaN/inf, so a regressor's non-finite output is written as null.
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


def _json_ready(values: np.ndarray[Any, Any]) -> Any:
    """Numeric arrays as they are (orjson writes them); text and object labels as lists."""
    if values.dtype.str in _ORJSON_DTYPES and values.flags.c_contiguous:
        return values
    return values.tolist()


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(
            413, f"body of {int(declared)} bytes, above the limit of {limit} bytes (--max-body-bytes)"
        )
    parts: list[bytes] = []
    size = 0
    try:
        async for part in request.stream():
            size += len(part)
            if size > limit:
                raise Problem(413, f"body larger than the limit of {limit} bytes (--max-body-bytes)")
            parts.append(part)
    except ClientDisconnect:
        # Nobody will read the answer: counted as 499 (nginx's "client closed request"),
        # neither a fault of the service (500) nor logged as one.
        raise Problem(
            CLIENT_CLOSED, f"the client closed the connection after {size} bytes of its body"
        ) from None
    return b"".join(parts)


# -- errors and metrics ------------------------------------------------------------------------


def _install_error_handlers(app: FastAPI) -> None:
    async def problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            {"error": f"invalid request: {where}: {first.get('msg', 'invalid')}"}, status_code=400
        )

    app.add_exception_handler(Problem, problem)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
