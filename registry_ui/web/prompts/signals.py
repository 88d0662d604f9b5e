"""What the mirror announces to the other domains."""

from django.dispatch import Signal

# Sent by the mirror inside its transaction, after it moved versions between stages and
# bumped the template's stage epoch. Arguments: template, actor, source. The reviews domain
# closes the open requests filed before the move (registry_ui.web.reviews.staleness).
stages_moved = Signal()
