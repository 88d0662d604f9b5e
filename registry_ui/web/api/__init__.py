"""The HTTP API under /api/v1/ (django-ninja): tokens, reads, writes, problem details.

A thin layer over the domains' selectors and services: no business rule lives here.
docs/api.md describes it; registry_ui/cli.py is its command-line client.
"""
