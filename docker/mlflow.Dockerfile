# The MLflow tracking/registry server: PostgreSQL backend store, S3-compatible artifacts.
FROM python:3.11-slim
RUN pip install --no-cache-dir "mlflow[auth]==3.17.2" "psycopg[binary]>=3.2,<4" "boto3>=1.34,<2"
# TCP_NODELAY for `mlflow server --workers N` (docker/mlflow-site/sitecustomize.py says why).
COPY docker/mlflow-site/sitecustomize.py /opt/mlflow-site/sitecustomize.py
ENV PYTHONPATH=/opt/mlflow-site
EXPOSE 5000
