# Two commands for a newcomer: `make run` and `make test`. Everything else is theirs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test install lint format lock bench clean

$(INSTALLED): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "registry_ui needs Python 3.11 or newer; set PYTHON=python3.11 (or newer)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(INSTALLED)

install: $(INSTALLED)

# A short summary, each line once: the set-up steps log warnings only (the server says the
# rest), and the demo's review emails go to var/mail/outbox.txt, not the console.
run: install
	@LOG_LEVEL=WARNING MLFLOW_LOGGING_LEVEL=WARNING $(PY) manage.py migrate --noinput -v 0
	@LOG_LEVEL=WARNING MLFLOW_LOGGING_LEVEL=WARNING $(PY) manage.py load_demo_data
	@echo "Open http://127.0.0.1:8000/ and sign in as one of the users above (Ctrl+C stops it)."
	@MLFLOW_LOGGING_LEVEL=WARNING $(PY) manage.py runserver 127.0.0.1:8000

test: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest
	@# SQLite's query plans: the page-scan test needs SQLite even when DATABASE_URL is PostgreSQL.
	env -u DATABASE_URL $(PY) -m pytest -q -p no:cacheprovider tests/web/prompts/test_page_queries_at_scale.py

lint: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# Re-pin every dependency after changing pyproject.toml.
lock: install
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > requirements.lock

bench: install
	$(PY) -m bench.template_ops
	$(PY) -m bench.registry_lookup

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
