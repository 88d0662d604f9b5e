"""Prompts: the mirror of MLflow's templates and everything the content team reads and writes.

mirror.py keeps the Django mirror in step with MLflow (sync, webhooks) and announces stage
moves (signals.py); selectors.py and views.py are the template pages; drafts.py and
draft_views.py the new-version editor; preview.py and samples.py the render preview.
"""
