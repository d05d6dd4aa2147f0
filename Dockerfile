# The service image: `docker run IMAGE` migrates the schema and serves the dashboard and API;
# the worker is the same image: `docker run IMAGE monitor worker`.
# Build stage: the wheel, with the C twin of the SDK's COPY encoder compiled
# (monitor/sdk/postgres/_speedups.c).
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md alembic.ini ./
COPY monitor ./monitor
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -m zipfile -l /wheels/monitor-*.whl | grep -q _speedups

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MONITOR_HOST=0.0.0.0 \
    MONITOR_PORT=8000 \
    MONITOR_HOME=/var/lib/monitor

WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install "$(ls /wheels/monitor-*.whl)[server]" && rm -r /wheels \
    && useradd --system --uid 10001 --home-dir /var/lib/monitor --create-home monitor

USER monitor
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["sh", "-c", "monitor db upgrade && exec monitor serve"]
