# vdiff-edu — two commands:  `make demo` (set up + run the main job)  and  `make test` (set up + run every test).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-fast check-full lab clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml scripts/install_torch.py
	$(PYTHON) -m venv $(VENV)
	$(PY) scripts/install_torch.py
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

## demo: preview Moving MNIST and the forward process, sample the shipped model, train the cpu preset; the whole
## of it, the install included, ends within the cpu preset's 10-minute budget (VDIFF_DEADLINE: 600 s after `make`
## started, which is when this line is read)
DEMO_START := $(shell date +%s)
demo: $(STAMP)
	VDIFF_DEADLINE=$$(( $(DEMO_START) + 600 )) $(PY) -m vdiff_edu demo

## test: the unit tests and every notebook top to bottom in smoke mode (nbval), in one run spread over every core
## (pytest-xdist; --dist loadscope keeps a notebook's cells, and a test module's tests, on one worker; one thread
## per worker, so that the workers never fight over the cores)
TEST_ENV := OMP_NUM_THREADS=1 VDIFF_SMOKE=1 VDIFF_OFFLINE=1 MPLBACKEND=Agg
test: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -q -n auto --dist loadscope --nbval-lax --nbval-cell-timeout=600 -p no:cacheprovider tests notebooks

test-fast: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -q -n auto --dist loadscope -p no:cacheprovider tests -m "not slow"

## check-full: every notebook top to bottom in FULL mode (VDIFF_SMOKE unset: full-mode geometry, models, weights and
## code paths) on the CPU, with each long loop cut to VDIFF_MAX_STEPS iterations (vdiff_edu.config.capped). Not part
## of `make test` or CI; its time is in docs/benchmarks.md. A subset: make check-full CHECK_FULL_NOTEBOOKS="notebooks/03_*"
CHECK_FULL_NOTEBOOKS ?= $(wildcard notebooks/[0-9][0-9]*_*.ipynb)
CHECK_FULL_JOBS      ?= auto
CHECK_FULL_MAX_STEPS ?= 2
CHECK_FULL_ENV := OMP_NUM_THREADS=1 VDIFF_SMOKE= VDIFF_MAX_STEPS=$(CHECK_FULL_MAX_STEPS) VDIFF_OFFLINE=1 MPLBACKEND=Agg
check-full: $(STAMP)
	$(CHECK_FULL_ENV) $(PY) -m pytest -q -n $(CHECK_FULL_JOBS) --dist loadscope --nbval-lax --nbval-cell-timeout=600 \
		-p no:cacheprovider --durations=0 $(CHECK_FULL_NOTEBOOKS)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) runs .pytest_cache
