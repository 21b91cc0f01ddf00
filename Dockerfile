# The API image, in two stages on the same pinned base. The first installs, with uv, what
# uv.lock pins into /opt/venv: the dependencies in a layer of their own (rebuilt only when
# pyproject.toml or uv.lock change), then the project itself (not editable). The second
# copies /opt/venv alone: no uv, no build tools, no dev tools. The migrations ship inside
# the package: the same image runs them (`app migrate`). tests/test_image.py builds and runs
# what this file sets up (the build stage's uv steps; the final stage's ENV, WORKDIR, USER,
# CMD and HEALTHCHECK) as an unprivileged user; tests/test_compose.py, the services.
FROM python:3.11.17-slim AS build

# The version the Makefile pins.
RUN pip install --no-cache-dir --disable-pip-version-check uv==0.13.9
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /src

COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY README.md LICENSE ./
COPY app ./app
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11.17-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

RUN useradd --create-home --uid 10001 app
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/app

# Everything is root's. The app user writes only to /srv/app/data, where the default
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
