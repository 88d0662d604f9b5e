"""Template text with its hidden characters made visible (registry_ui.core.hidden_text).

``{{ text|reveal_hidden }}`` shows each bidirectional control or invisible character as a
``<U+202E>`` badge instead of the character, so a page can never show text in another order
than the one the model gets; ``{% hidden_text_warning text other_text %}`` is the banner above
such text, empty when there is nothing to say.
"""

from __future__ import annotations

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

from registry_ui.core.hidden_text import hidden_characters, pieces

register = template.Library()


@register.filter(needs_autoescape=True)
def reveal_hidden(text, autoescape=True):
    if not isinstance(text, str) or not hidden_characters(text):
        return conditional_escape(text) if autoescape else text
    shown = []
    for plain, hidden in pieces(text):
        if hidden is None:
            shown.append(conditional_escape(plain))
        else:
            shown.append(
                format_html(
                    '<span class="hidden-char" title="{}">&lt;{}&gt;</span>',
                    hidden.name,
                    hidden.codepoint,
                )
            )
    return mark_safe("".join(shown))  # every piece is escaped above


@register.simple_tag
def hidden_text_warning(*texts):
    found = [h for text in texts if isinstance(text, str) for h in hidden_characters(text)]
    if not found:
        return ""
    reorders = sum(h.reorders for h in found)
    kinds = []
    if reorders:
        kinds.append(f"{reorders} that change the order in which text is shown")
    if len(found) - reorders:
        kinds.append(f"{len(found) - reorders} that cannot be seen")
    return format_html(
        '<div class="notice error hidden-warning" role="alert"><p><strong>Hidden characters'
        "</strong>: this text holds {}. Each is shown here as a badge such as "
        '<span class="hidden-char">&lt;{}&gt;</span> in place of the character; the model is '
        "sent the characters themselves. Make sure each one is meant.</p></div>",
        " and ".join(kinds),
        found[0].codepoint,
    )
