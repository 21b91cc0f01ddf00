# The API image: the project installed from pyproject.toml into a venv, as `make` does
# (without the dev tools). The same image runs the migrations (`alembic upgrade head`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv && useradd --create-home --uid 10001 app
WORKDIR /srv/app

COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --quiet .
COPY alembic.ini ./
COPY alembic ./alembic

USER app
ENV HOST=0.0.0.0 PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/health', timeout=2)"]
CMD ["python", "-m", "app"]
