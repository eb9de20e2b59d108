# Two commands do everything on a fresh machine:
#   make demo   create .venv, install, build the Blue Marble tiles, train → evaluate → predict
#   make test   create .venv, install, run the tests
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint docs clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, from the builds on this machine's disk (see README: Install)
	$(PY) -m pip install -q "torch>=2.3,<=2.14.1" "torchvision>=0.18,<=0.29.1"
	$(PY) -m pip install -q -e ".[dev]"
	# test-only reference for our soft dice; --no-deps: it would pull GUI opencv beside headless
	$(PY) -m pip install -q --no-deps "pytorch-toolbelt==0.8.0"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/podium demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check podium tests benchmarks

clean:
	rm -rf runs .pytest_cache

docs: $(STAMP)
	$(PY) -m podium.config.docs --write README.md
