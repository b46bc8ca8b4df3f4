# Production image: gunicorn serving the dashboard, static files by WhiteNoise.
# Configure with environment variables (see .env.example and the README's "Deploying"):
# at least SECRET_KEY, ALLOWED_HOSTS and METRONOME_BEARER_TOKEN, and DATABASE_URL for a
# database shared by several instances (without it: SQLite in the /data volume).
#
# The build runs `make install`, the same step as a deployment without the container
# (virtualenv from the hashed lock, then collectstatic), so CI's fresh-clone test covers it.
# Pinned to a full version tag (Debian bookworm, slim); pin by digest as well where your
# registry allows (docker buildx imagetools inspect python:3.11.14-slim-bookworm).
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin dashboard \
 && mkdir /data && chown dashboard /data

WORKDIR /app
# The lock first, so a code change does not reinstall the dependencies.
COPY Makefile requirements.txt requirements-pip.txt ./
RUN make .venv/.installed PYTHON=python3
COPY . .
RUN make install PYTHON=python3

# Read-only code owned by root; the process may write only /data (the SQLite database).
USER dashboard
# The listening address (0.0.0.0:$PORT), DATA_DIR=/data and DEBUG=false are the entrypoint's
# defaults, not ENV lines: an env file's empty `GUNICORN_BIND=` would replace an ENV value
# with "", while the entrypoint treats an empty variable as unset.
ENV PATH=/app/.venv/bin:$PATH
VOLUME /data
EXPOSE 8000
# Docker keeps this; an image built in the OCI format (podman's and buildah's default) drops
# it: build with `--format docker`, or use compose.yaml's healthcheck, which repeats it.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "deploy/healthcheck.py"]
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
# migrate waits for the database (DATABASE_WAIT_SECONDS) and is safe from every replica at
# once (it takes a PostgreSQL lock); compose.yaml runs it as a one-off step instead and starts
# the app with `gunicorn dashboard.wsgi` only.
# A stop (SIGTERM) lets requests in flight finish for GUNICORN_GRACEFUL_TIMEOUT (120 s):
# give the container a longer stop grace period (compose.yaml: stop_grace_period).
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn dashboard.wsgi"]
