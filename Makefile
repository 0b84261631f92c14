# Two commands do everything:
#   make run    install into .venv and run the embedded AToM pipeline end to end
#   make test   install into .venv and run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
STAMP   = $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: install run test test-fast protos bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/atomctl run-pipeline

test: $(STAMP)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

protos: $(STAMP)
	$(PY) -m atom.protogen

clean:
	rm -rf $(VENV) .atom
