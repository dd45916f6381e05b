# syntax=docker/dockerfile:1
# Build: wheels for every dependency. Run: a slim image, a non-root user, `cityos serve`.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip
COPY pyproject.toml README.md ./
COPY cityos ./cityos
RUN pip wheel --no-cache-dir --wheel-dir /wheels . \
 && rm -f /wheels/cityos-*.whl

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    CITYOS_ENV=production \
    CITYOS_HOST=0.0.0.0 \
    CITYOS_PORT=8000 \
    CITYOS_DATA_DIR=/app/.cityos
RUN groupadd --system --gid 10001 cityos \
 && useradd --system --uid 10001 --gid cityos --home-dir /app --shell /usr/sbin/nologin cityos
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY --chown=cityos:cityos pyproject.toml alembic.ini ./
COPY --chown=cityos:cityos cityos ./cityos
COPY --chown=cityos:cityos migrations ./migrations
COPY --chown=cityos:cityos policies ./policies
COPY --chown=cityos:cityos graphql ./graphql
USER cityos
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=2)" || exit 1
CMD ["python", "-m", "cityos", "serve"]
