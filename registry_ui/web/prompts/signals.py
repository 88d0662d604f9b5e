"""What the mirror announces to the other domains."""

from django.dispatch import Signal

# Sent by the mirror inside its transaction, after it moved versions between stages and
# bumped the template's stage epoch. Arguments: template, actor, source. The reviews domain
# closes the open requests filed before the move (registry_ui.web.reviews.staleness).
stages_moved = Signal()

# Sent by the mirror inside its transaction, after it added versions of a template.
# Arguments: name, rows (the TemplateVersion rows added). The template's native prompt is
# brought in step after the commit when it is chosen for publishing (prompts/tasks.py).
versions_added = Signal()

# Sent after the commit when a native prompt's alias request is filed, approved (still
# open) or finished. Arguments: request_id, event ("filed", "approved", "done", "failed").
# The reviews domain emails the reviewers or the requester (reviews/notifications.py).
native_request_event = Signal()
