# The MLflow tracking/registry server: PostgreSQL backend store, S3-compatible artifacts.
FROM python:3.11-slim
RUN pip install --no-cache-dir "mlflow==3.17.2" "psycopg[binary]>=3.2,<4" "boto3>=1.34,<2"
EXPOSE 5000
