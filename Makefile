# Two commands do everything:
#   make run    install into .venv and run the embedded AToM pipeline end to end
#   make test   install into .venv and run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
STAMP   = $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: install run test test-fast browser lint protos bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/atomctl run-pipeline

test: $(STAMP) browser lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check atom services benchmarks tests deploy
	$(VENV)/bin/ruff format --check atom services benchmarks tests deploy
	$(VENV)/bin/mypy

# The run-browser test drives a real Chromium. Installed here when missing and we may (root);
# otherwise the test says the one line that installs it.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    { apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	      { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; }; } || \
	  echo "note: no Chromium; the run-browser test will fail. Install it: sudo apt-get install --no-install-recommends chromium"

test-fast: $(STAMP)
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

protos: $(STAMP)
	$(PY) -m atom.protogen

clean:
	rm -rf $(VENV) .atom
