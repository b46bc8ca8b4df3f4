#!/bin/sh
# The image's defaults, applied when a variable is unset *or empty*. Docker's ENV cannot do
# this: an env file's `GUNICORN_BIND=` (as in .env.example) replaces the image's value with
# "", and gunicorn would listen on 127.0.0.1 inside the container, where the published port
# cannot reach it. An empty setting means "not set", here as in dashboard/settings.py.
set -eu
: "${PORT:=8000}"
: "${GUNICORN_BIND:=0.0.0.0:$PORT}"
: "${DATA_DIR:=/data}"
# The image is production: Django's debug pages only when asked for in so many words.
: "${DEBUG:=false}"
export PORT GUNICORN_BIND DATA_DIR DEBUG
exec "$@"
