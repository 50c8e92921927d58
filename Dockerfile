# The production image: `pingan http` (intake, API, console, relay) or `pingan worker`
# against Kafka and PostgreSQL, as docker-compose.yml runs them. Dependencies come from
# requirements.lock (`make lock`), the versions the suite was run with; the embedded
# broker (the `embedded` extra) is left out: a deployment uses Kafka.
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PINGAN_DATA_DIR=/var/lib/pingan \
    PINGAN_HTTP_HOST=0.0.0.0 \
    PINGAN_HTTP_PORT=8080

WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY pingan ./pingan
COPY streams ./streams
COPY alerts ./alerts
COPY playbooks ./playbooks
RUN pip install --no-deps . \
    && useradd --system --home-dir /var/lib/pingan pingan \
    && mkdir -p /var/lib/pingan \
    && chown pingan /var/lib/pingan

USER pingan
VOLUME /var/lib/pingan
EXPOSE 8080
# Liveness of `pingan http` (a worker overrides it in docker-compose.yml); readiness
# for a load balancer is /readyz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["pingan", "http"]
