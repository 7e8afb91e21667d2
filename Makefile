# Railbook: the two commands of the README, and the pieces they are made of.
#   make demo   set up (virtualenv + pinned deps) and run `railbook demo` on the embedded default
#   make test   set up everything (deps, Kafka jars, Chromium when possible) and run the whole suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint unit integration kafka-jars kafka-start kafka-stop browser bench dashboard clean

demo: $(STAMP)
	$(BIN)/railbook demo

test: $(STAMP) kafka-jars browser lint
	$(BIN)/pytest -q -ra

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP) kafka-jars browser
	$(BIN)/pytest -q -m integration

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

kafka-jars:
	bash scripts/kafka-broker.sh fetch

kafka-start: kafka-jars
	bash scripts/kafka-broker.sh start

kafka-stop:
	bash scripts/kafka-broker.sh stop

browser:
	-bash scripts/install-chromium.sh

bench: $(STAMP)
	$(BIN)/railbook bench ledger
	$(BIN)/railbook bench policy

dashboard: $(STAMP)
	$(BIN)/railbook dashboard

clean:
	rm -rf railbook-data bench-results .pytest_cache .mypy_cache .ruff_cache
