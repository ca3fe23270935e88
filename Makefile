# The two set-up commands of the README: `make demo` and `make test`.
# Both create a local virtualenv (.venv) on first use; nothing else needs installing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: demo test lint typecheck unit unit-pg bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (found: $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/evidence demo

test: lint typecheck unit unit-pg

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Both test passes run on every (logical) core with pytest-xdist, at most 4 workers (each
# starts its own Prefect test server); tests/conftest.py keeps apart what the workers must
# not share. One process, in order: `make unit PYTEST_ARGS=-n0`.
PYTEST_ARGS ?= -n logical --maxprocesses 4

unit: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# The catalog-heavy tests again with a PostgreSQL catalog (127.0.0.1:5432, a fresh database
# per test). Skipped where no PostgreSQL answers, except on CI, where its absence fails. The
# flow tests (tests/test_flow.py) test orchestration, not the catalog: tests/test_scaleout.py
# runs flows on a PostgreSQL catalog, so they run once, on SQLite.
PG_TESTS := tests/test_ingest.py tests/test_registry.py tests/test_registry_ingest.py \
	tests/test_cases.py tests/test_seal.py tests/test_compliance_flow.py \
	tests/test_custody_access.py tests/test_custody_tamper.py tests/test_export.py \
	tests/test_custody_fixity_flow.py tests/test_ingest_s3.py tests/test_record_replay.py \
	tests/test_trust_anchors.py tests/test_accounts.py tests/test_station_api.py \
	tests/test_disposal.py \
	tests/test_retention_rules.py tests/test_holds.py tests/test_retention_locks.py \
	tests/test_search_tails.py
unit-pg: $(STAMP)
	EVIDENCE_TEST_CATALOG=postgresql $(BIN)/pytest $(PYTEST_ARGS) $(PG_TESTS)

# The benchmarks of BENCHMARKS.md at full size (about 14 minutes): a table on stdout and
# benchmarks/results/bench.json + bench.md. `make test` runs only a quick smoke of them.
bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
