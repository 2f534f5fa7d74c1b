# `make demo` and `make test` do all set-up on a fresh machine: they create .venv when
# it is missing and install what they need. CPU torch is pinned by default so pip does
# not pull a multi-GB CUDA build; choose another build with TORCH_SPEC, e.g.
#   make test TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= all,dev
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell echo "$(TORCH_SPEC) $(EXTRAS)" | cksum | cut -d' ' -f1)

.PHONY: setup demo test test-fast bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-* && touch $@

demo: setup
	$(VENV)/bin/medsight demo --out demo_out

# pytest exits 5 when it collects no tests (e.g. a filtered run): that is not a failure.
test: setup
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

bench: setup
	$(PY) bench/bench_cli_startup.py
	$(PY) bench/bench_dicom_load.py

lint: setup
	$(VENV)/bin/ruff check src tests bench

clean:
	rm -rf $(VENV) demo_out .pytest_cache
