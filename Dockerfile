# Aetherial gateway image: the project installed from pyproject.toml, run as a non-root user.
FROM python:3.11-slim

# A production image: settings production needs (MONGODB_URL, REDIS_URL, JWT_SECRET) must be
# given, and the gateway refuses to run mini-programs without their sandbox (bubblewrap, below).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AETHERIAL_ENV=production \
    AETHERIAL_HOST=0.0.0.0 \
    AETHERIAL_PORT=8080 \
    METRICS_PORT=9100 \
    AETHERIAL_DATA_DIR=/app/var

# bubblewrap isolates each mini-program (namespaces, its own filesystem view). The service user
# is not root, so bwrap works through an unprivileged user namespace; docker-compose.yml grants
# the gateway container what that needs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 aetherial \
    && useradd --system --uid 10001 --gid aetherial --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin aetherial

WORKDIR /app

# Sources stay owned by root (read-only for the service user); only /app/var is writable.
COPY pyproject.toml README.md ./
COPY gateway/ gateway/
COPY messaging/ messaging/
COPY wallet/ wallet/
COPY miniapps/ miniapps/
COPY sdk/ sdk/
COPY storage/ storage/
COPY run.py ./

# Dependencies come from pyproject.toml only: install the project itself, never a hand-kept list.
RUN pip install --no-cache-dir ".[apps]" \
    && rm -rf build ./*.egg-info \
    && mkdir -p /app/var \
    && chown aetherial:aetherial /app/var

USER aetherial

VOLUME ["/app/var"]

EXPOSE 8080
# GET /metrics for Prometheus (METRICS_PORT), apart from the public port: do not publish it.
EXPOSE 9100

# The slim image has no curl; python's urllib exits non-zero on any error or non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('AETHERIAL_PORT', '8080'), timeout=4)"]

CMD ["python", "run.py"]
