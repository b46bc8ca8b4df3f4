# Production image: gunicorn serving the dashboard, static files by WhiteNoise.
# Configure with environment variables (see .env.example); at least SECRET_KEY,
# ALLOWED_HOSTS and METRONOME_BEARER_TOKEN, and DATABASE_URL for a shared database.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
RUN pip install --require-hashes -r requirements.txt

COPY . .
RUN DEBUG=false SECRET_KEY=collectstatic-only ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
 && useradd --system --no-create-home dashboard
USER dashboard

EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
# Migrations run before serving; several replicas racing on them is safe in PostgreSQL.
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn dashboard.wsgi"]
