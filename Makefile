# trails — build, install and test.
#
#   make demo          set up this machine, install, load frappe, run the demo query
#   make test          set up, install, then the pg_regress suite and pytest
#   make setup         apt packages, venv, the trails package, cluster, role, database
#                      (idempotent; scripts/setup.sh)
#   make install       the trails package into the venv (pip install ., not editable), the
#                      extension's SQL into PostgreSQL (PGXS), and the cluster's environment:
#                      PYTHONPATH += the venv's site-packages, TRAILS_CONFIG = an installed copy
#                      of config.ini (python -m trails.installer). Nothing names this checkout:
#                      the database keeps working when it moves.
#   make installcheck  the SQL surface as users see it (pg_regress: test/sql, test/expected)
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
EXTRA_CLEAN = $(EXTENSION_SQL) test/results test/regression.diffs test/regression.out

REGRESS = surface describe planning filtering bad_input
REGRESS_OPTS = --inputdir=test --outputdir=test
CONTRIB_TESTDB = trails_regression

PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
else
install installcheck:
	@echo "pg_config not found at $(PG_CONFIG): run 'make setup' first" >&2; exit 1
endif

all: $(EXTENSION_SQL)

# sql/*.sql in order; each line "-- @reraise" becomes sql/reraise.plpgsql (see sql/02_errors.sql)
$(EXTENSION_SQL): $(sort $(wildcard sql/*.sql)) sql/reraise.plpgsql
	@echo "-- trails $(TRAILS_VERSION): generated from sql/*.sql by make; do not edit" > $@
	@printf '%s\n' '\echo Use "CREATE EXTENSION trails CASCADE" to load this file. \quit' >> $@
	@for f in $(sort $(wildcard sql/*.sql)); do printf '\n-- %s\n' "$$f"; \
	  sed -e '/^-- @reraise$$/{r sql/reraise.plpgsql' -e 'd}' "$$f"; done >> $@

install: $(EXTENSION_SQL) package register-python

package:
	@TRAILS_VENV=$(TRAILS_VENV) bash scripts/install_package.sh

# PL/Python runs as the postgres user inside the server: tell it where the venv is.
register-python: package
	@$(TRAILS_PYTHON) -m trails.installer --venv $(TRAILS_VENV) --cluster $(PG_CLUSTER) --config config.ini

setup:
	@TRAILS_VENV=$(TRAILS_VENV) bash scripts/setup.sh

demo: setup
	@$(SUDO) $(MAKE) --no-print-directory install
	@TRAILS_VENV=$(TRAILS_VENV) bash scripts/demo.sh

test: setup
	@$(SUDO) $(MAKE) --no-print-directory install
	@$(MAKE) --no-print-directory installcheck
	$(TRAILS_PYTHON) -m pytest -q tests

.PHONY: setup demo test package register-python
