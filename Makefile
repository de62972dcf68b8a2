# The two entry points of README.md: `make demo` and `make test` (run as root on Debian 12).
# On a server: `make install [PREFIX=...] [DESTDIR=...] [WHEELS=DIR] [FORCE=1]` and
# `make uninstall [PREFIX=...] [PURGE=1]` (tools/install.py, docs/install.md).
VENV    ?= .venv
PY      := $(VENV)/bin/python
BIN     := $(VENV)/bin
LAB     ?= clp
PYTHON  ?= python3
PREFIX  ?= /opt/nec/clusterpro
DESTDIR ?=
WHEELS  ?=
yes      = $(filter 1 yes true,$(1))
INSTALL  = $(PYTHON) -m tools.install

.PHONY: deps venv demo demo-down test lint bench clean install uninstall wheels

deps:
	@tools/install-deps.sh

$(VENV)/.installed: setup.py pyproject.toml $(wildcard native/*.c native/*.h native/*.py)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: deps $(VENV)/.installed

demo: venv
	$(BIN)/clplab up --name $(LAB) -n 2 --config clp/samples/lab2
	$(BIN)/clplab wait-online --name $(LAB) --timeout 60
	@for i in $$(seq 60); do \
	  $(BIN)/clplab --name $(LAB) exec server1 -- clpgrp -n failover1 >/dev/null 2>&1 && break; \
	  sleep 1; done
	$(BIN)/clplab exec --name $(LAB) server1 -- clpstat
	@echo
	@echo "The lab cluster '$(LAB)' is up: ManagementGroup and failover1 run on server1."
	@echo "A shell on a server:        $(BIN)/clplab --name $(LAB) shell server1"
	@echo "Move the group:             $(BIN)/clplab --name $(LAB) exec server1 -- clpgrp -m failover1"
	@echo "Crash its server and watch: $(BIN)/clplab --name $(LAB) crash server1; sleep 12; $(BIN)/clplab --name $(LAB) exec server2 -- clpstat"
	@echo "Stop everything:            make demo-down"

demo-down:
	$(BIN)/clplab down --name $(LAB)

lint: venv
	$(BIN)/ruff check clp services tests benchmarks tools

test: venv lint
	$(BIN)/pytest -q -p no:cacheprovider tests

bench: venv
	@tools/install-deps.sh --bench
	$(BIN)/pip install -q -e '.[test,bench]'
	$(PY) benchmarks/clpstat_latency.py
	$(PY) benchmarks/hb_latency.py
	$(PY) benchmarks/move_time.py
	$(PY) benchmarks/failover_time.py --stress
	$(PY) benchmarks/hb_stability.py --minutes 10
	$(PY) benchmarks/alert_latency.py
	$(PY) benchmarks/snmpwalk_time.py
	$(PY) benchmarks/push_time.py

install:
	$(INSTALL) install --prefix '$(PREFIX)' $(if $(DESTDIR),--destdir '$(DESTDIR)') \
	  $(if $(WHEELS),--wheels '$(WHEELS)') $(if $(call yes,$(FORCE)),--force)

uninstall:
	$(INSTALL) uninstall --prefix '$(PREFIX)' $(if $(DESTDIR),--destdir '$(DESTDIR)') \
	  $(if $(call yes,$(PURGE)),--purge)

wheels:
	$(INSTALL) wheels --out build/wheels

clean:
	rm -rf $(VENV) build *.egg-info
