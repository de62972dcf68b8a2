# The two entry points of README.md: `make demo` and `make test` (run as root on Debian 12).
VENV    ?= .venv
PY      := $(VENV)/bin/python
BIN     := $(VENV)/bin
LAB     ?= clp
PYTHON  ?= python3

.PHONY: deps venv demo demo-down test lint bench clean

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
	$(BIN)/ruff check clp services tests benchmarks

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

clean:
	rm -rf $(VENV) build *.egg-info
