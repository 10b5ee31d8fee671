# syntax=docker/dockerfile:1
# Build stage: wheels compiled here, so the final image carries no compilers.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# Only this throwaway stage gets a compiler; Debian stable keeps build-essential's
# version fixed, and an exact pin would break the build at the next point release.
# hadolint ignore=DL3008
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
# A fixed numeric uid/gid: volume and EFS access-point permissions are granted
# to numbers, and Kubernetes' runAsNonRoot can only verify a numeric USER.
# pg_dump/pg_restore: backups and restores of businesses kept in PostgreSQL
# (TENANT_DATABASE_URL). A client tool, not a compiler; pinned by Debian stable.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home app \
    && mkdir -p /data/tenants && chown -R 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The code stays owned by root: the server process can read it but not rewrite it.
COPY . /app
# collectstatic needs settings that load; the throwaway key never serves traffic.
RUN DJANGO_SECRET_KEY=collectstatic-only-000000000000000000000000000000000000000 \
    ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput --verbosity 0
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
# Web: daphne serves HTTP and websockets. The worker runs the same image with
# `python manage.py rqworker --with-scheduler --job-class django_tasks_rq.Job default`
# when REDIS_URL is set (tasks queued in Redis), else `python manage.py db_worker
# --no-reload`; see compose.yaml and docs/deploy-aws.md.
CMD ["sh", "-c", "exec daphne -b 0.0.0.0 -p ${PORT} -v 0 smartscheduler.asgi:application"]
