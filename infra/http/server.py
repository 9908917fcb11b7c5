"""`dealledger serve`: the HTTP API under uvicorn."""

from __future__ import annotations

import uvicorn

from infra.bootstrap import Wiring


def serve(wiring: Wiring, host: str = "127.0.0.1", port: int = 8000) -> None:
    uvicorn.run(
        wiring.http_app(),
        host=host,
        port=port,
        log_level=wiring.settings.log_level.lower(),
        access_log=False,  # the API logs each request itself, with its correlation id
        proxy_headers=True,
    )
