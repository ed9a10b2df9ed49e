# trails — build, install and test.
#
#   make demo     set up this machine, install the extension, load frappe, run the demo query
#   make test     set up this machine, install, run the test suite
#   make setup    apt packages, venv, cluster, role and database (idempotent; scripts/setup.sh)
#   make install  install the extension into PostgreSQL (PGXS) and record where Python finds
#                 the trails package and the venv (PYTHONPATH in the cluster's environment file)
#
# The control file lives in extension/ (the layout the project asked for). PGXS's EXTENSION
# variable would look for ./trails.control, so the files are listed in DATA instead and
# MODULEDIR sends them to the same place EXTENSION would: $(sharedir)/extension.

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
PG_CLUSTER ?= 15/main
TRAILS_VENV ?= /opt/trails-venv
TRAILS_VERSION = 0.1.0
EXTENSION_SQL = extension/trails--$(TRAILS_VERSION).sql
TRAILS_PYTHON = $(TRAILS_VENV)/bin/python
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

MODULEDIR = extension
DATA = extension/trails.control $(EXTENSION_SQL)
EXTRA_CLEAN = $(EXTENSION_SQL)

PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
else
install:
	@echo "pg_config not found at $(PG_CONFIG): run 'make setup' first" >&2; exit 1
endif

all: $(EXTENSION_SQL)

$(EXTENSION_SQL): $(sort $(wildcard sql/*.sql))
	@echo "-- trails $(TRAILS_VERSION): generated from sql/*.sql by make; do not edit" > $@
	@printf '%s\n' '\echo Use "CREATE EXTENSION trails CASCADE" to load this file. \quit' >> $@
	@for f in $^; do printf '\n-- %s\n' "$$f"; cat "$$f"; done >> $@

install: $(EXTENSION_SQL) register-python

# PL/Python runs as the postgres user inside the server: tell it where trails and the venv are.
register-python:
	@TRAILS_VENV=$(TRAILS_VENV) PG_CLUSTER=$(PG_CLUSTER) bash scripts/register_python.sh

setup:
	@TRAILS_VENV=$(TRAILS_VENV) bash scripts/setup.sh

demo: setup
	@$(SUDO) $(MAKE) --no-print-directory install
	@TRAILS_VENV=$(TRAILS_VENV) bash scripts/demo.sh

test: setup
	@$(SUDO) $(MAKE) --no-print-directory install
	$(TRAILS_PYTHON) -m pytest -q tests

.PHONY: setup demo test register-python
