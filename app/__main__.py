"""`python -m app`: serve the API on HOST:PORT from the settings."""

import uvicorn

from app.settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run("app.main:app", host=settings.host, port=settings.port, proxy_headers=True)


if __name__ == "__main__":
    main()
