# syntax=docker/dockerfile:1
# Build stage: wheels compiled here, so the final image carries no compilers.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv && /opt/venv/bin/pip install -r /tmp/requirements.txt

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=smartscheduler.settings \
    VAR_DIR=/data \
    PORT=8000
RUN groupadd --system app && useradd --system --gid app --home /app app \
    && mkdir -p /data/tenants && chown -R app:app /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=app:app . /app
# collectstatic needs settings that load; the throwaway key never serves traffic.
RUN DJANGO_SECRET_KEY=collectstatic-only-000000000000000000000000000000000000000 \
    ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput --verbosity 0
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
# Web: daphne serves HTTP and websockets. The worker runs the same image with
# `python manage.py db_worker --no-reload` (or `rqworker` with REDIS_URL).
CMD ["sh", "-c", "exec daphne -b 0.0.0.0 -p ${PORT} --proxy-headers smartscheduler.asgi:application"]
