# Two commands on a fresh machine: `make run` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NODE_PREFIX := .devstack/node
AZURITE := $(NODE_PREFIX)/node_modules/.bin/azurite-blob
AZURITE_VERSION := 3.37.0
# checkov pins dozens of packages that clash with ours: it lives in a virtualenv of its own.
CHECKOV_VERSION := 3.3.30
CHECKOV := .tools/checkov/bin/checkov

.PHONY: install peers run test conformance lint bench soak fuzz profile package infra-check clean

# uv resolves and installs the ~150 packages in seconds where pip takes minutes.
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "uv>=0.9,<1"
	$(PY) -m uv pip install --quiet --python $(PY) -r requirements-dev.txt
	touch $(STAMP)

# Azurite (the storage emulator) comes from npm; Node and npm are on the machine.
$(AZURITE):
	mkdir -p $(NODE_PREFIX)
	npm install --silent --no-audit --no-fund --prefix $(NODE_PREFIX) azurite@$(AZURITE_VERSION)

# tests/infra/test_templates.py runs it. uv (a dev requirement) installs it in ~15 s from a cold
# cache, where pip takes ~1.5 minutes.
$(CHECKOV): $(STAMP)
	rm -rf .tools/checkov
	$(PY) -m uv venv --quiet --python $(PY) .tools/checkov
	$(PY) -m uv pip install --quiet --no-config --python .tools/checkov/bin/python checkov==$(CHECKOV_VERSION)

# The pieces are independent once the venv exists, so they install side by side.
install:
	@$(MAKE) --no-print-directory -j4 $(STAMP) $(AZURITE) $(CHECKOV)

# Third-party MCP servers for the conformance matrix, pinned, each in its own npm folder or venv
# under .cache/conformance (docs/conformance.md). Idempotent: a peer whose stamp matches its lock is skipped.
peers: $(STAMP)
	$(PY) -m tests.conformance.install

# peers: the second MCP server `make run` starts beside the Scheduler is server-everything (from the
# conformance matrix; docs/several-servers.md). Installed once, then a stamp check.
run: install peers
	$(PY) -m devstack.run

# The suite runs on three workers (pytest-xdist, a file per worker at a time) while the conformance
# matrix runs beside it in its own process; its output follows the suite's. Most tests wait on
# real servers, so two cores carry four test processes well: on a fresh clone three workers took
# the whole run from 8 min 13 s to 6 min 41 s (same machine, same load beside it).
test:
	@$(MAKE) --no-print-directory -j4 $(STAMP) $(AZURITE) $(CHECKOV) peers
	$(PY) -m ruff check .
	@mkdir -p .cache; \
	$(PY) -m pytest -q -p no:cacheprovider tests/conformance > .cache/conformance.log 2>&1 & matrix=$$!; \
	$(PY) -m pytest -q -n 3 --dist loadfile --ignore=tests/conformance; suite=$$?; \
	wait $$matrix; conformance=$$?; \
	echo "--- conformance matrix (tests/conformance)"; cat .cache/conformance.log; \
	test $$suite -eq 0 -a $$conformance -eq 0

# Only the conformance matrix (peer × scenario), printed as a table at the end (docs/conformance.md).
conformance:
	@$(MAKE) --no-print-directory -j4 $(STAMP) $(AZURITE) $(CHECKOV) peers
	$(PY) -m pytest -q tests/conformance

# The bridge side by side with a raw mcp.Client on loopback, about 2-3 minutes (docs/performance.md).
# Uses wrk for the HTTP section when installed (apt-get install wrk), else an httpx2 load loop.
bench: install package
	$(PY) -m bench.peers install
	$(PY) -m bench

# Reliability figures to quote (docs/reliability.md), about 20 minutes: a 15-minute soak of one
# bridge process, 3 minutes of chaos against a third-party server, and 10,000 bad requests. Each
# prints one line (SOAK, CHAOS, FUZZ); all three run even when one fails.
soak: install peers
	@$(PY) -m reliability.soak; soak=$$?; \
	$(PY) -m reliability.chaos --seconds 180; chaos=$$?; \
	$(PY) -m reliability.fuzz --count 10000; fuzz=$$?; \
	test $$soak -eq 0 -a $$chaos -eq 0 -a $$fuzz -eq 0

# Only the 10,000 bad requests (about a minute); failures land in .cache/fuzz-failures.jsonl.
fuzz: install
	$(PY) -m reliability.fuzz --count 10000

# py-spy profiles of the same call through the bridge and through a raw mcp.Client (docs/performance.md).
profile: install
	mkdir -p build
	$(VENV)/bin/py-spy record -r 500 -f speedscope -o build/profile-bridge.json -- $(PY) -m bench.profile_calls bridge
	$(VENV)/bin/py-spy record -r 500 -f speedscope -o build/profile-raw.json -- $(PY) -m bench.profile_calls raw

# The zip to deploy (docs/deployment.md): build/scheduler-bridge.zip, and build/package/ for azd.
package: $(STAMP)
	$(PY) -m tools.package

# checkov's own report on infra/ (make test asserts the same: no failed check).
infra-check: $(CHECKOV)
	$(CHECKOV) --directory infra --framework bicep --compact --skip-download

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build .tools .cache/conformance
