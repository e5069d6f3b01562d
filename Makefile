# tempsweep: the same targets locally and in CI.
#   make demo   set up and run the main job on its embedded defaults
#   make test   set up everything (virtualenv, control plane, Prometheus/promtool, Helm, Azurite, PostgreSQL) and run
#               the whole suite
#   make bench  benchmarks (not tests)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
LOCAL := .local

.PHONY: venv test unit lint demo bench crds chart cluster cluster-down controlplane prometheus helm azurite postgres clean

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

helm:
	bash tests/helm/build.sh

azurite:
	bash tests/azurite/install.sh

postgres:
	bash tests/postgres/ensure.sh

lint: venv
	$(VENV)/bin/ruff check operator tests benchmarks demo
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy operator/tempsweep

test: venv controlplane prometheus helm azurite postgres lint
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
	@$(MAKE) --no-print-directory chart

# The Helm chart's copies of the CRDs and the monitoring rules and dashboard (tests/chart fails when they differ).
chart:
	cp crds/tempsweep.io_cleanuppolicies.yaml crds/tempsweep.io_cleanupruns.yaml manifests/base/kopf-peering-crds.yaml \
		charts/tempsweep/files/crds/
	cp manifests/monitoring/prometheusrule.yaml manifests/monitoring/dashboard.json charts/tempsweep/files/monitoring/

cluster: venv controlplane
	$(PY) tests/controlplane/cluster.py up

cluster-down:
	$(PYTHON) tests/controlplane/cluster.py down

clean: cluster-down
	rm -rf $(VENV) $(LOCAL)
