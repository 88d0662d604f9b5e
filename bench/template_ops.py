"""Template operations: render vs str.format, cached variables, validating a new 2 KB template.

Run from the repository root: python -m bench.template_ops
Prints a short summary, then one JSON object as the last line.
Goals: render_ratio_vs_str_format <= 1.5, variables_cached_us < 2.
"""

from __future__ import annotations

import datetime
import json
import statistics
import timeit

from registry_ui.core.template import parse_template
from registry_ui.prompt_model import PromptModel

REPEATS = 7
RENDER_REPEATS = 15
RENDER_ROUNDS = 10_000
VARIABLES_CALLS = 200_000
VALIDATE_TEMPLATES = 2_000

# Realistic templates, most with format specs, and the values callers pass.
CASES = [
    (
        "🔥 {hook_text} - {cta} #trending #{hashtag}",
        {"hook_text": "AI just changed everything", "cta": "See how", "hashtag": "AIRevolution"},
    ),
    (
        "Hello {name}, your balance is ${balance:,.2f} as of {as_of:%Y-%m-%d}.",
        {"name": "Ann", "balance": 1234567.891, "as_of": datetime.date(2024, 5, 17)},
    ),
    (
        "Config: {settings[api][key]} (timeout {settings[api][timeout]:>4d}s) for {user!r}",
        {"settings": {"api": {"key": "k-123", "timeout": 30}}, "user": "alice"},
    ),
    (
        "{rank:>3}. {title:<40} {score:6.1%} [{value:{width}.{precision}f}]",
        {
            "rank": 7,
            "title": "Why prompts need versions",
            "score": 0.8734,
            "value": 3.14159,
            "width": 10,
            "precision": 3,
        },
    ),
    (
        "You are a {persona} writing for {audience}. Write {count:d} posts about {topic}.\n"
        "Tone: {tone}. Each post at most {max_chars:d} characters. Avoid: {avoid}.",
        {
            "persona": "founder",
            "audience": "engineers",
            "count": 3,
            "topic": "MLflow",
            "tone": "direct",
            "max_chars": 280,
            "avoid": "hype",
        },
    ),
]


def best_seconds(statement, number: int) -> float:
    return min(timeit.repeat(statement, number=number, repeat=REPEATS))


def best_of_interleaved(first, second) -> tuple[float, float]:
    """Best time of each, timed in turns so that load from other processes hits both alike."""
    first_timer, second_timer = timeit.Timer(first), timeit.Timer(second)
    first_times, second_times = [], []
    for _ in range(RENDER_REPEATS):
        first_times.append(first_timer.timeit(RENDER_ROUNDS))
        second_times.append(second_timer.timeit(RENDER_ROUNDS))
    return min(first_times), min(second_times)


def render_ratio() -> tuple[float, float, float]:
    texts = [(text, values) for text, values in CASES]
    models = [(PromptModel("bench/render", text, "1.0.0"), values) for text, values in CASES]

    def with_str_format():
        for text, values in texts:
            text.format(**values)

    def with_prompt_model():
        for model, values in models:
            model.render(**values)

    for (text, values), (model, _) in zip(texts, models, strict=True):
        assert model.render(**values) == text.format(**values)
    str_format, prompt_model = best_of_interleaved(with_str_format, with_prompt_model)
    per_render = len(CASES) * RENDER_ROUNDS
    return prompt_model / str_format, str_format / per_render * 1e6, prompt_model / per_render * 1e6


def variables_cached_us() -> float:
    model = PromptModel("bench/variables", CASES[3][0], "1.0.0")
    return best_seconds(model.get_template_variables, VARIABLES_CALLS) / VARIABLES_CALLS * 1e6


def two_kb_template(serial: int) -> str:
    """About 2 KB of realistic template text, made unique so no cache has seen it."""
    text, line = f"Template #{serial}\n", 0
    while len(text) < 2048:
        line += 1
        text += (
            f"Line {line}: dear {{name}}, item {{items[{line % 5}]}} costs ${{price_{line}:,.2f}} "
            f"(was {{old.price:>8}}) on {{when:%Y-%m-%d}} {{{{literal}}}} {{note!r}}\n"
        )
    return text


def validate_2kb_us() -> tuple[float, int]:
    timings = []
    for repeat in range(REPEATS):
        first = repeat * VALIDATE_TEMPLATES  # never the same text twice, so never a cache hit
        fresh = [two_kb_template(serial) for serial in range(first, first + VALIDATE_TEMPLATES)]
        started = timeit.default_timer()
        for text in fresh:
            parse_template(text)
        timings.append((timeit.default_timer() - started) / VALIDATE_TEMPLATES * 1e6)
    return statistics.median(timings), len(two_kb_template(0))


def main() -> None:
    ratio, str_format_us, prompt_model_us = render_ratio()
    variables_us = variables_cached_us()
    validate_us, size = validate_2kb_us()
    print(
        f"render: PromptModel {prompt_model_us:.3f} us vs str.format {str_format_us:.3f} us "
        f"per render over {len(CASES)} templates (ratio {ratio:.2f}, goal <= 1.5)"
    )
    print(f"get_template_variables on a cached template: {variables_us:.3f} us (goal < 2)")
    print(f"validating a fresh {size}-character template: {validate_us:.1f} us")
    result = {
        "render_ratio_vs_str_format": round(ratio, 3),
        "variables_cached_us": round(variables_us, 3),
        "validate_2kb_us": round(validate_us, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
