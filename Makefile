SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime we target is Python 3.13. `python3.13` may be a pyenv shim that refuses to run when 3.13 is
# not the selected version, so try candidates until one really is 3.13.
PYTHON313 ?= $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13 /usr/bin/python3.13; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1 && { echo "$$p"; break; }; done)
VENV      := .venv
PY        := $(VENV)/bin/python
TOOLS     := .venv-tools
SAM       := $(TOOLS)/bin/sam
CFNLINT   := $(TOOLS)/bin/cfn-lint
PIP_FLAGS := --quiet --disable-pip-version-check
export SAM_CLI_TELEMETRY := 0

WEB       := web
CHROMIUM  := /usr/bin/chromium
# The console's inputs: a change to any of them rebuilds web/dist on the next make dev / make test.
WEB_SRC   := $(shell find $(WEB)/src $(WEB)/public -type f 2>/dev/null) $(WEB)/index.html $(WEB)/vite.config.ts $(WEB)/tsconfig.json $(WEB)/tsconfig.node.json

FUNCTION ?=
EVENT    ?=
STAGE    ?= dev
ARGS     ?=

.PHONY: help deps dev test lint unit integration contract e2e build invoke replay bench deploy clean console say \
	screenshots publish-console

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt layers/common/requirements.txt
	@test -n "$(PYTHON313)" || { echo "Python 3.13 not found (tried python3.13 and ~/.pyenv/versions/3.13*)"; exit 1; }
	$(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip
	$(PY) -m pip install $(PIP_FLAGS) -r requirements-dev.txt
	@touch $@

$(TOOLS)/.installed: requirements-tools.txt
	@test -n "$(PYTHON313)" || { echo "Python 3.13 not found"; exit 1; }
	$(PYTHON313) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(TOOLS)/bin/python -m pip install $(PIP_FLAGS) -r requirements-tools.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(WEB)/dist/index.html: $(WEB)/node_modules/.installed $(WEB_SRC)
	cd $(WEB) && npm run --silent build

# Browser tests drive Debian's Chromium through Playwright for Python (no browser download: docs/console.md).
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "install Chromium at $(CHROMIUM) (Debian: apt-get install chromium)"; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

console: $(WEB)/dist/index.html ## Build the web console into web/dist (npm ci + vite build)

deps: $(VENV)/.installed $(TOOLS)/.installed node_modules/.installed console $(CHROMIUM) ## Install everything (venvs, Prism, console, Chromium)

dev: $(VENV)/.installed console ## Run the gateway locally: moto, HTTP gateway + console on $$PORT (3000), provider sandbox
	$(PY) -m local.dev

say: $(VENV)/.installed ## Play the customer in make dev: make say TO=<number|phone_number_id> TEXT=… [FROM=+1555…] [MEDIA=file|url] [PROVIDER=twilio|meta]
	@test -n "$(TO)" || { echo "usage: make say TO=<channel number or Meta phone number ID> TEXT='Hello' [FROM=+15551234567] [MEDIA=photo.jpg]"; exit 2; }
	$(PY) -m local.say --to "$(TO)" --text "$(TEXT)" $(if $(FROM),--from "$(FROM)") $(if $(MEDIA),--media "$(MEDIA)") $(if $(PROVIDER),--provider "$(PROVIDER)")

screenshots: deps ## Screenshots of the console's main screens → docs/screenshots/*.png
	$(PY) -m local.screenshots

test: deps lint ## Install everything, lint, and run every test
	$(PY) -m pytest -q -n 2 --dist loadgroup

lint: deps ## ruff, mypy, sam validate --lint, cfn-lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(SAM) validate --lint --template template.yaml
	$(CFNLINT) template.yaml

unit: $(VENV)/.installed ## Unit tests only
	$(PY) -m pytest -q tests/unit

integration: $(VENV)/.installed ## Integration tests (in-process moto)
	$(PY) -m pytest -q tests/integration

contract: deps ## Contract tests against Prism serving ../shared/specs
	$(PY) -m pytest -q tests/contract

e2e: $(VENV)/.installed ## End-to-end tests against a local stack they start
	$(PY) -m pytest -q tests/e2e

build: $(TOOLS)/.installed ## sam build (no Docker; arm64 wheels are fetched by pip)
	PATH="$(dir $(PYTHON313)):$$PATH" $(SAM) build --template template.yaml

invoke: $(VENV)/.installed ## Run one handler in-process against the running `make dev`: make invoke EVENT=events/channels_list.json [FUNCTION=channels_api]
	@test -n "$(EVENT)" || { echo "usage: make invoke EVENT=<file> [FUNCTION=<name>]"; exit 2; }
	$(PY) -m local.invoke $(FUNCTION) $(EVENT)

replay: $(VENV)/.installed ## Re-drive dead-lettered stream batches (make dev; or ARGS="--aws --stack <name>")
	$(PY) -m local.replay $(ARGS)

bench: $(VENV)/.installed console $(CHROMIUM) ## Benchmarks (console ones in Chromium); writes docs/BENCHMARKS.md (ARGS="--only load" re-measures one section)
	$(PY) -m bench.run $(ARGS)

deploy: build console ## sam deploy (uses samconfig.toml; STAGE=dev|prod), then publish the console
	$(SAM) deploy --config-env $(STAGE)
	$(PY) -m local.publish_console --config-env $(STAGE)

publish-console: $(VENV)/.installed console ## Upload web/dist + config.json to a deployed stack (STAGE=dev|prod)
	$(PY) -m local.publish_console --config-env $(STAGE)

clean: ## Remove build output and caches (keeps the venvs)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis .local $(WEB)/dist
