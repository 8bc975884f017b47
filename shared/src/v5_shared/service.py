"""One call gives a service everything it shares with the others: settings, pools, token
verification, request context, JSON errors, health, metrics and graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from types import FrameType

import uvicorn
from fastapi import APIRouter, FastAPI

from .admission import AdmissionControl
from .auth import TokenVerifier
from .datastores import DataStores
from .errors import install_error_handlers
from .health import router as health_router
from .logging import configure_logging, get_logger
from .middleware import RequestContextMiddleware
from .routing import require_json_routes
from .settings import Settings, get_settings

Hook = Callable[[FastAPI], Awaitable[None]]

log = get_logger(__name__)


def create_service_app(
    name: str,
    *,
    routers: Sequence[APIRouter],
    description: str = "",
    on_startup: Hook | None = None,
    on_shutdown: Hook | None = None,
    signs_tokens: bool = False,
    settings: Settings | None = None,
) -> FastAPI:
    """Build a service's FastAPI app. `signs_tokens` is true only for identity."""
    settings = settings or get_settings()
    settings = settings.model_copy(update={"service_name": name})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(name, settings.log_level)
        settings.check_production_safety(needs_private_key=signs_tokens)
        app.state.settings = settings
        app.state.shutting_down = False
        app.state.token_verifier = TokenVerifier(settings)
        app.state.stores = await DataStores.open(settings)
        try:
            if on_startup is not None:
                await on_startup(app)
            log.info("service_started", environment=settings.environment)
            yield
        finally:
            app.state.shutting_down = True
            if on_shutdown is not None:
                await on_shutdown(app)
            await app.state.stores.close()
            log.info("service_stopped")

    app = FastAPI(
        title=f"V5 {name} service",
        description=description,
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.readiness_checks = {}
    install_error_handlers(app)
    app.include_router(health_router)
    for router in routers:
        require_json_routes(router)
        app.include_router(router)
    # Added first, so it runs inside the request context: a refused request still gets its
    # request id, security headers, metrics and access log line.
    app.add_middleware(
        AdmissionControl,
        service=name,
        limit=settings.max_concurrent_requests,
        wait_seconds=settings.admission_wait_seconds,
    )
    app.add_middleware(RequestContextMiddleware, service=name, log_requests=settings.access_log)
    return app


class _DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT: readiness answers 503 at once, then (after SHUTDOWN_DELAY_SECONDS,
    time for load balancers to notice) uvicorn stops accepting and drains in-flight requests."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, delay_seconds: float) -> None:
        super().__init__(config)
        self._app = app
        self._delay = delay_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app.state.shutting_down = True
        if self._delay > 0 and sig == signal.SIGTERM and not self.should_exit:
            asyncio.get_running_loop().call_later(self._delay, super().handle_exit, sig, frame)
            return
        super().handle_exit(sig, frame)


def run_service(app: FastAPI, settings: Settings | None = None) -> None:
    """Run one replica: one uvicorn process on uvloop and httptools."""
    settings = settings or get_settings()
    configure_logging(app.title, settings.log_level)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_keep_alive=settings.keep_alive_seconds,
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        backlog=4096,
    )
    _DrainingServer(config, app, settings.shutdown_delay_seconds).run()
