"""Demo users and templates for `make run`."""

from __future__ import annotations

# username, role, admin
DEMO_USERS = [
    ("alice", "author", False),
    ("bob", "reviewer", False),
    ("carol", "reviewer", False),
    ("dave", "analyst", False),
    ("admin", "admin", True),
]


def _meta(author: str, purpose: str, target: float, **extra):
    return {
        "author": author,
        "purpose": purpose,
        "tested_on": "threads",
        "performance_metrics": {"engagement_rate": target},
        "engagement_target": target,
        **extra,
    }


# Test cases of the hook generator (registry_ui.core.checks). 2.0.0 drops the hashtags, so it
# fails the second case that 1.2.0 passes: its request page shows the regression.
HOOK_CASES = [
    {
        "name": "fits a Threads post",
        "values": {"hook_text": "AI just changed everything", "cta": "See how", "hashtag": "AI"},
        "max_length": 500,
        "no_leftover_braces": True,
    },
    {
        "name": "keeps the trending hashtag",
        "values": {"hook_text": "Ship it", "cta": "Read more", "hashtag": "launch"},
        "contains": ["#trending", {"regex": "#launch\\b"}],
    },
]


# name -> [(version, template, metadata, promotions applied in order)]
# Promotions run version by version, so later versions replace earlier ones and the
# replaced ones end up archived: every stage is represented.
DEMO_TEMPLATES = {
    "persona/entrepreneur/hook-generator": [
        (
            "1.0.0",
            "🔥 {hook_text} - {cta}",
            _meta("alice", "Opening hook for entrepreneur posts", 0.05),
            ["staging", "production"],
        ),
        (
            "1.1.0",
            "🔥 {hook_text} - {cta} #trending #{hashtag}",
            _meta("alice", "Opening hook with a hashtag", 0.06),
            ["staging", "production"],
        ),
        (
            "1.2.0",
            "🔥 {hook_text}\n👉 {cta} #trending #{hashtag}",
            _meta(
                "alice", "Hook with the call to action on its own line", 0.06, test_cases=HOOK_CASES
            ),
            ["staging"],
        ),
        (
            "2.0.0",
            "{hook_text} 👉 {cta}",
            _meta("alice", "Hook without hashtags", 0.06, test_cases=HOOK_CASES),
            [],
        ),
    ],
    "persona/entrepreneur/story-narrator": [
        (
            "1.0.0",
            "Once, {founder} had {amount:,} dollars and one idea: {idea}.",
            _meta("alice", "Founder story opening", 0.04),
            ["staging", "production"],
        ),
        (
            "1.0.1",
            "Once, {founder} had just {amount:,} dollars and one idea: {idea}.",
            _meta("alice", "Founder story opening, tighter wording", 0.04),
            ["staging"],
        ),
    ],
    "system/error-handler/user-message": [
        (
            "1.0.0",
            "Sorry {user[name]}, something went wrong ({code}). Please try again.",
            _meta("bob", "Message shown when generation fails", 0.0),
            ["staging", "production"],
        ),
        (
            "1.1.0",
            "Sorry {user[name]}, something went wrong ({code}) at {when:%H:%M}. Please try again.",
            _meta("bob", "Failure message with the time", 0.0),
            [],
        ),
    ],
    "viral-hook-generator": [
        (
            "1.0.0",
            "🔥 {hook_text} - {cta} #trending #{hashtag}",
            _meta("content-team", "The design note's example", 0.06),
            ["staging"],
        ),
    ],
}


# Tags (metadata "tags") the template list filters by, the same for every version of one.
DEMO_TAGS = {
    "persona/entrepreneur/hook-generator": ["social", "hooks"],
    "persona/entrepreneur/story-narrator": ["social", "stories"],
    "system/error-handler/user-message": ["system"],
    "viral-hook-generator": ["social", "hooks", "design-note"],
}


for _name, _versions in DEMO_TEMPLATES.items():
    for _version, _text, _metadata, _promotions in _versions:
        _metadata["tags"] = DEMO_TAGS[_name]


# A prompt kept in MLflow's own Prompt Registry (mlflow.genai.register_prompt), as a team on
# MLflow 3 has it before registry_ui: production on its first version. The demo adopts it
# (import_prompts), so its staging and production aliases then move only through requests;
# alice asks to move staging to the chat version. name -> [(template, commit message,
# model configuration, tags)], oldest first.
DEMO_NATIVE_PROMPT = "demo-support-reply"
DEMO_NATIVE_VERSIONS = [
    ("Answer {{ question }} kindly, in two sentences at most.", "first words", None, {}),
    (
        [
            {"role": "system", "content": "You answer for {{ company }}, briefly and kindly."},
            {"role": "user", "content": "{{ question }}"},
        ],
        "as a chat, with a model",
        {"model_name": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 300},
        {
            "registry_ui.test_cases": (
                '[{"name": "names the company", "values": {"company": "Acme", '
                '"question": "Where is my order?"}, "contains": "Acme"}]'
            )
        },
    ),
]
DEMO_NATIVE_ALIASES = {"production": 1}  # as it was in MLflow before adoption
