"""Checks: each version's test cases and metadata policy, run, stored and shown.

The rules are pure (registry_ui.core.checks); services.py runs and stores them, views.py
runs them on demand.
"""
