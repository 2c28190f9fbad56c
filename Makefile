# Two commands for a newcomer: `make demo` and `make test`. Both build their own virtualenv.
# `make serve` keeps the emulator running with a sample workspace, to click through its pages.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo serve test lint unit integration engines image pipelines bench soak clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# With a Docker daemon or without one (demo/__main__.py).
demo: $(STAMP)
	$(PY) -m demo

# Until Ctrl-C; `make serve ROOT=DIR` keeps its data in DIR (demo/serve.py).
serve: $(STAMP)
	$(PY) -m demo.serve $(if $(ROOT),--root $(ROOT))

# Debian 13's Docker 26 (both image stores), buildx and oras beside the system's docker, for the tests that
# run on every engine (harness/engines.py); a no-op once they are in ~/.cache/bbc-engines.
engines:
	bash harness/install-engines.sh

test: $(STAMP) engines
	$(PY) -m pytest test

# ruff, configured in pyproject.toml: zero findings.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

unit: $(STAMP)
	$(PY) -m pytest test/unit

integration: $(STAMP) engines
	$(PY) -m pytest test/integration

image: $(STAMP)
	PYTHON=$(PY) bash scripts/build-pipe-image.sh

# The README's bitbucket-pipelines.yml run by bitbucket-pipeline-runner, the pipe inside the step's docker
# service (docs/PIPELINES.md; ~4 min, more on the first run, which builds the stand-in images). `.ci/run` runs
# it after `make test`: together they would pass the 15 minutes that `make test` may take.
pipelines: $(STAMP) engines
	$(PY) -m pytest test/pipelines

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@

# The embedded registry against distribution 2.8, the pipe against docker push, the push engines
# against docker push and the export floor, pushes from archives against skopeo copy, the
# registry's pages, and the pipe image with and without bytecode (~30 min in all; BENCHMARKS.md).
bench: $(BENCH_STAMP) engines
	$(PY) -m bench

# A bounded soak of the registry (SOAK_SECONDS, default 180); see RELIABILITY.md. Not part of `make test`.
soak: $(STAMP)
	$(PY) -m pytest test/soak -q -s

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
