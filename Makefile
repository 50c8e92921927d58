# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

PRISM := .tools/node_modules/.bin/prism

.PHONY: demo run test test-fast bench migration lint fmt clean lock

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pingan demo

run: $(STAMP)
	$(BIN)/pingan run

# Prism serves Twilio's own OpenAPI description, so the SMS channel is tested against
# the provider's contract (npm registry; no download at test time).
$(PRISM):
	npm install --silent --no-audit --no-fund --prefix .tools @stoplight/prism-cli@5

# PostgreSQL tests use the machine's server (scripts/test-postgres.sh starts it, and
# installs it with apt-get where missing); set PINGAN_TEST_POSTGRES_URL to use another.
test: $(STAMP) $(PRISM)
	scripts/ensure-chromium.sh
	scripts/ensure-promtool.sh
	$(BIN)/ruff check .
	PINGAN_TEST_POSTGRES_URL="$${PINGAN_TEST_POSTGRES_URL:-$$(scripts/test-postgres.sh || true)}" \
		$(BIN)/python -m pytest -q -ra

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not e2e"

# make bench BENCH=storm: one bench. The storm runs on PINGAN_DATABASE_URL and
# PINGAN_KAFKA_URL when set (PostgreSQL, an external broker), else the embedded default.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH)

# After editing pingan/store/schema.py: make migration MSG="why the schema changes"
migration: $(STAMP)
	$(BIN)/python -m pingan.store.migrate "$(MSG)"
	$(BIN)/ruff check --fix --quiet pingan/store/migrations/versions
	$(BIN)/ruff format --quiet pingan/store/migrations/versions

# requirements.lock pins every runtime dependency for the image (Dockerfile); after
# changing [project] dependencies in pyproject.toml, run `make lock` and commit it.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile --quiet --python-version 3.11 --output-file requirements.lock pyproject.toml

lint: $(STAMP)
	$(BIN)/ruff check .

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var test-artifacts .tools
