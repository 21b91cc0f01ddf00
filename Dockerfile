# The API image: the project installed from pyproject.toml into a venv, as `make` does
# (without the dev tools). The migrations ship inside the package: the same image runs
# them (`app migrate`). tests/test_image.py runs what this file sets up (its ENV, WORKDIR,
# USER, CMD and HEALTHCHECK) as an unprivileged user; tests/test_compose.py, the services.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv && useradd --create-home --uid 10001 app
WORKDIR /srv/app

COPY pyproject.toml README.md LICENSE ./
COPY app ./app
RUN pip install --quiet .

# The code stays root's. The app user writes only to /srv/app/data, where the default
# SQLite database lives (mount a volume there to keep it); PostgreSQL: set DATABASE_URL.
RUN install -d -o app -g app /srv/app/data
USER app
ENV DATABASE_URL=sqlite+aiosqlite:////srv/app/data/app.db \
    HOST=0.0.0.0 \
    PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/health/ready', timeout=2)"]
CMD ["app", "serve"]
