# Two commands on a fresh machine: `make run` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NODE_PREFIX := .devstack/node
AZURITE := $(NODE_PREFIX)/node_modules/.bin/azurite-blob
AZURITE_VERSION := 3.37.0

.PHONY: install run test lint bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# Azurite (the storage emulator) comes from npm; Node and npm are on the machine.
$(AZURITE):
	mkdir -p $(NODE_PREFIX)
	npm install --silent --no-audit --no-fund --prefix $(NODE_PREFIX) azurite@$(AZURITE_VERSION)

install: $(STAMP) $(AZURITE)

run: install
	$(PY) -m devstack.run

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest -q

# The bridge side by side with a raw mcp.Client on loopback, about 2-3 minutes (docs/performance.md).
# Uses wrk for the HTTP section when installed (apt-get install wrk), else an httpx2 load loop.
bench: install
	$(PY) -m bench

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
