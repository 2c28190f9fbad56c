# Two commands for a newcomer: `make demo` and `make test`. Both build their own virtualenv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test unit integration image bench soak clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

demo: $(STAMP)
	PYTHON=$(PY) bash scripts/demo.sh

test: $(STAMP)
	$(PY) -m pytest test

unit: $(STAMP)
	$(PY) -m pytest test/unit

integration: $(STAMP)
	$(PY) -m pytest test/integration

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
