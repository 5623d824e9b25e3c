# Two entry points a new user needs (see README):
#   make demo   - build the package into .venv and run the E/I network demo
#   make test   - build the package into .venv and run the test suite
# Each creates its own virtual environment and installs everything it needs.

PYTHON ?= python3.11
VENV ?= .venv
STACK ?= newest
CONSTRAINTS := constraints/$(STACK).txt
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-$(STACK)

.PHONY: demo test test-oldest install bench docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Build deps first (jaxlib provides the FFI headers), then the package itself against
# exactly that jaxlib (--no-build-isolation), with the test extras.
$(STAMP): $(PY) pyproject.toml $(CONSTRAINTS) CMakeLists.txt $(shell find brainpy_poisson_plugin -type f -not -name '*.pyc' 2>/dev/null)
	$(PIP) install -q -c $(CONSTRAINTS) "scikit-build-core>=0.10" jax jaxlib brainpy
	$(PIP) install -q --no-build-isolation -c $(CONSTRAINTS) ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/ei_network.py

test: $(STAMP)
	cd tests && ../$(VENV)/bin/python -m pytest -q

# The whole suite on the oldest supported stack (BrainPy 2.6.1, jax 0.4.38), in its own venv.
test-oldest:
	$(MAKE) test VENV=.venv-oldest STACK=oldest

bench: $(STAMP)
	$(VENV)/bin/brainpy-poisson bench

clean:
	rm -rf build dist $(VENV) .venv-oldest
