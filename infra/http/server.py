"""`dealledger serve`: the HTTP API under uvicorn."""

from __future__ import annotations

from infra.settings import Settings


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    import uvicorn

    from infra.http.app import create_app

    app = create_app(settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,  # the API logs each request itself, with its correlation id
        proxy_headers=True,
    )
