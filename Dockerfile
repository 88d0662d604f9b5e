FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml requirements.lock README.md ./
COPY registry_ui ./registry_ui
RUN pip install --no-cache-dir -c requirements.lock .
COPY . .
RUN DEBUG=true python manage.py collectstatic --noinput
RUN useradd --create-home app && chown -R app /app
USER app
EXPOSE 8000
CMD ["gunicorn", "registry_ui.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
