# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_FLAGS ?=

export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: venv test test-slow demo clean

venv: $(STAMP)

# COCO's panopticapi (panopticapi-lite) is only the reference our PQ evaluator is tested against.
# Its package pins numpy<2, which pq_compute does not need, so it is installed without dependencies.
$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e '.[dev,litert]'
	$(PY) -m pip install --quiet --no-deps panopticapi-lite==0.2.0
	touch $(STAMP)

## Fast test suite (what CI runs): must stay under 20 minutes on 2 cores.
test: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_FLAGS) tests

## Slow checks: notebooks, `make demo` with a short setting, full-size builds.
test-slow: $(STAMP)
	$(PY) -m pytest -m "slow" $(PYTEST_FLAGS) tests

clean:
	rm -rf $(VENV) demo_output .pytest_cache
