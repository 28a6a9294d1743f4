# Two commands on a fresh machine: `make run` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NODE_PREFIX := .devstack/node
AZURITE := $(NODE_PREFIX)/node_modules/.bin/azurite-blob
AZURITE_VERSION := 3.37.0

.PHONY: install peers run test conformance lint bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# Azurite (the storage emulator) comes from npm; Node and npm are on the machine.
$(AZURITE):
	mkdir -p $(NODE_PREFIX)
	npm install --silent --no-audit --no-fund --prefix $(NODE_PREFIX) azurite@$(AZURITE_VERSION)

install: $(STAMP) $(AZURITE)

# Third-party MCP servers for the conformance matrix, pinned, each in its own npm folder or venv
# under .cache/conformance (docs/conformance.md). Idempotent: a peer whose stamp matches its lock is skipped.
peers: $(STAMP)
	$(PY) -m tests.conformance.install

run: install
	$(PY) -m devstack.run

test: install peers
	$(PY) -m ruff check .
	$(PY) -m pytest -q

# Only the conformance matrix (peer × scenario), printed as a table at the end (docs/conformance.md).
conformance: install peers
	$(PY) -m pytest -q tests/conformance

# The bridge side by side with a raw mcp.Client on loopback, about 2-3 minutes (docs/performance.md).
# Uses wrk for the HTTP section when installed (apt-get install wrk), else an httpx2 load loop.
bench: install
	$(PY) -m bench

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .cache/conformance
