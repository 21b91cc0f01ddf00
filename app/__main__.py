"""`python -m app`: serve the API on HOST:PORT from the settings."""

import uvicorn

from app.settings import Settings


def main() -> None:
    settings = Settings()
    # One process; uvicorn[standard] brings uvloop and httptools, and picks them.
    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        access_log=settings.access_log,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
