# The planner's image: web (gunicorn), Celery worker and beat all run from it (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    STATIC_ROOT=/app/staticfiles PLANNER_DATA_DIR=/app/data
WORKDIR /app

RUN useradd --create-home --uid 10001 planner
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
# collectstatic needs settings but no database; throwaway build-time secrets are never used at run time.
RUN SECRET_KEY=build-only PLANNER_CREDENTIALS_KEY=build-only DATABASE_URL=postgresql://build@localhost/build \
    python manage.py collectstatic --noinput \
    && mkdir -p /app/data && chown -R planner /app/data

USER planner
EXPOSE 8000
CMD ["gunicorn", "planner.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-", "--no-control-socket"]
