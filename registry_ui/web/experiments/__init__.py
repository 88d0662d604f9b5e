"""Experiments: A/B experiments from definition to results.

definitions.py defines and stops them; publishing.py writes their configuration to MLflow
for the runtime; tokens.py and api.py take outcome events from calling services and
ingestion.py stores them; results.py computes the statistics; mlflow_metrics.py logs and
imports metrics; views.py, forms.py and charts.py are the pages; tasks.py the periodic work.
"""
