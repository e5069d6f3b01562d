# tempsweep: the same targets locally and in CI.
#   make demo   set up and run the main job on its embedded defaults
#   make test   set up everything (virtualenv, control plane, Prometheus/promtool, Azurite, PostgreSQL) and run
#               the whole suite
#   make bench  benchmarks (not tests)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
LOCAL := .local

.PHONY: venv test unit lint demo bench crds cluster cluster-down controlplane prometheus azurite postgres clean

$(INSTALLED): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(INSTALLED)

venv: $(INSTALLED)

## Real components the tests talk to; each script is idempotent and fails loudly.
controlplane:
	bash tests/controlplane/build.sh

prometheus:
	bash tests/prometheus/build.sh

azurite:
	bash tests/azurite/install.sh

postgres:
	bash tests/postgres/ensure.sh

lint: venv
	$(VENV)/bin/ruff check operator tests benchmarks demo
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy operator/tempsweep

test: venv controlplane prometheus azurite postgres lint
	$(PY) -m pytest

unit: venv
	$(PY) -m pytest tests --ignore=tests/e2e -m "not postgres and not azurite"

# The offline half first: it needs no cluster, so nobody waits for the control-plane build to see it.
demo: venv
	$(PY) demo/demo.py --offline
	@$(MAKE) --no-print-directory controlplane
	$(PY) demo/demo.py --cluster

bench: venv controlplane azurite postgres
	$(PY) benchmarks/run.py

crds: venv
	$(VENV)/bin/tempsweep crds --output crds

cluster: venv controlplane
	$(PY) tests/controlplane/cluster.py up

cluster-down:
	$(PYTHON) tests/controlplane/cluster.py down

clean: cluster-down
	rm -rf $(VENV) $(LOCAL)
