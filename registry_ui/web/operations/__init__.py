"""Operations: changes to MLflow as rows, carried out exactly once by Celery workers.

queue.py files batches (services); tasks.py queues and runs them; worker.py carries them
out; sweeper.py re-sends what was left pending; selectors.py and views.py show progress.
"""
