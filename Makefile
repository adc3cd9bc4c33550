# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Two workers: the machine CI runs on has 2 cores.
PYTEST_FLAGS ?= -n 2

export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: venv test test-slow demo clean

venv: $(STAMP)

# COCO's panopticapi (panopticapi-lite) is only the reference our PQ evaluator is tested against.
# Its package pins numpy<2, which pq_compute does not need, so it is installed without dependencies.
$(STAMP): setup.py keras_axial/evaluation/_pair_counts.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e '.[dev,litert]'
	$(PY) -m pip install --quiet --no-deps panopticapi-lite==0.2.0
	touch $(STAMP)

## The main job on the built-in synthetic dataset: train, evaluate, export, pictures (demo_output/).
## `make demo DEMO_STEPS=6000` trains longer; `DEMO_EXPERIMENT=gin/experiments/...` picks another
## experiment; `DEMO_ARGS="--fresh"` passes more flags (python -m keras_axial.demo --help).
DEMO_EXPERIMENT ?= gin/experiments/synthetic_tiny.gin
DEMO_STEPS ?=
DEMO_ARGS ?=
demo: $(STAMP)
	$(PY) -m keras_axial.demo --gin_file=$(DEMO_EXPERIMENT) \
		$(if $(DEMO_STEPS),--train_steps=$(DEMO_STEPS)) $(DEMO_ARGS)

## Fast test suite (what CI runs): must stay under 20 minutes on 2 cores.
test: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_FLAGS) tests

## Slow checks: notebooks, `make demo` with a short setting, full-size builds.
test-slow: $(STAMP)
	$(PY) -m pytest -m "slow" $(PYTEST_FLAGS) tests

clean:
	rm -rf $(VENV) demo_output .pytest_cache
