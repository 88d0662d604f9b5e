"""Reviews: promotion, rollback and release requests, four-eyes approvals, their execution.

services.py and releases.py file and decide requests; execution.py carries approved ones
out inside the operations worker; staleness.py closes requests whose template moved;
trail.py audits and notifies; notifications.py and tasks.py send email and webhooks;
inbox.py, selectors.py, forms.py and views.py are the review pages.
"""
