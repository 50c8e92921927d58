FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pingan ./pingan
COPY streams ./streams
COPY alerts ./alerts
COPY playbooks ./playbooks
RUN pip install --no-cache-dir . && useradd --system pingan && mkdir -p /var/lib/pingan \
    && chown pingan /var/lib/pingan
USER pingan
CMD ["pingan", "run"]
