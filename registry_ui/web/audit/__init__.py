"""Audit: the append-only, hash-chained trail of every state change.

trail.py appends and verifies; filters.py, selectors.py and views.py are the audit log page,
export.py its CSV; history.py answers which version held production when.
"""
