# One image for web (gunicorn), worker and beat (celery); see docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 REGISTRY_UI_VAR_DIR=/tmp/registry_ui
COPY pyproject.toml requirements.lock README.md ./
COPY registry_ui ./registry_ui
RUN pip install --no-cache-dir -c requirements.lock .
COPY manage.py ./
COPY templates ./templates
COPY static ./static
RUN DEBUG=true python manage.py collectstatic --noinput
# The audit-heads volume's mount point: a new named volume takes its owner from here.
RUN useradd --create-home app && mkdir -p /var/lib/registry_ui/audit \
    && chown -R app /app /var/lib/registry_ui
USER app
EXPOSE 8000
CMD ["gunicorn", "registry_ui.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
