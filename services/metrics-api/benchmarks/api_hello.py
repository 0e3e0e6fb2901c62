"""The baseline for cached throughput: a minimal FastAPI app with one JSON endpoint, served as
`signal_api.main` serves the API (uvicorn.run, one worker, no log config, no access log).

Run: `python -m api_hello PORT` (the benchmark starts it on 127.0.0.1).
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

PATH = "/hello"


def create_app() -> FastAPI:
    """An app with one route, GET /hello -> {"hello": "world"}."""
    app = FastAPI()

    @app.get(PATH)
    async def hello() -> dict[str, str]:
        """A constant JSON object."""
        return {"hello": "world"}

    return app


def main() -> None:
    """Serve the app on 127.0.0.1:PORT with the uvicorn settings of signal_api.main."""
    uvicorn.run(
        create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False
    )


if __name__ == "__main__":
    main()
