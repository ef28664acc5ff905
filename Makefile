# Two entry points: `make demo` and `make test`. Both create .venv when needed.
#
# Everything is installed from the committed lock (uv.lock, hash-checked) by a pinned uv that the Makefile
# bootstraps into .tools/ from .ci/uv-requirements.txt (hash-checked too). Nothing is resolved anew: a
# release published tomorrow changes nothing here until someone runs `make lock` or `make upgrade`.
# `make test PYTHON=python3.13` runs the suite on another interpreter (uv rebuilds .venv for it).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
# uv never downloads an interpreter of its own, and .venv holds the project with every extra.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
SYNC   := $(UV) sync --locked --all-extras --python $(PYTHON) --quiet

.PHONY: demo test test-lowest lint typecheck format bench lock upgrade lock-check sync clean

# pip's own config (extra indexes, find-links) is ignored: uv comes from PyPI, by hash, or not at all.
$(UV): .ci/uv-requirements.txt
	rm -rf $(TOOLS)
	$(PYTHON) -m pip install --isolated --quiet --disable-pip-version-check --root-user-action=ignore \
		--no-deps --only-binary :all: --require-hashes --target $(TOOLS) -r .ci/uv-requirements.txt
	touch $(UV)

# Cheap when nothing changed; fails with uv's one-line message when pyproject.toml and uv.lock disagree.
sync: $(UV)
	$(SYNC)

demo: sync
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/demo.sh

# pytest exits 5 when it ran no test: that is a failure here, not a success.
# The suite runs on $(WORKERS) pytest-xdist workers (most tests wait on servers and children, not the CPU),
# a test file on one worker (--dist loadfile: its module fixtures start once). `make test WORKERS=0` runs
# it in one process. Not loadgroup: pytest 9.2 ignores the group xdist 3.8 writes into the node id.
WORKERS ?= 2
XDIST   := -n $(WORKERS) --dist loadfile
test: sync
	@$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest ran no test" >&2; exit 1; fi; exit $$rc

lint: sync
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: sync
	$(BIN)/mypy

format: sync
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: sync
	$(BIN)/python -m bench

# The lock is refreshed on purpose only: `make lock` after editing pyproject.toml (keeps every locked
# version that still fits), `make upgrade` to move everything to the newest versions the ranges allow.
lock: $(UV)
	$(UV) lock --python $(PYTHON)

upgrade: $(UV)
	$(UV) lock --upgrade --python $(PYTHON)

# The lower bounds in pyproject.toml are tested, not guessed: this installs the lowest version every range
# allows (not from the lock, on purpose) and runs the suite. Not part of CI: run it when a bound moves.
test-lowest: $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) .venv-lowest
	$(UV) pip install --quiet --python .venv-lowest/bin/python --resolution lowest-direct -e '.[dev]'
	@.venv-lowest/bin/python -m pytest $(XDIST) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test-lowest: pytest ran no test" >&2; exit 1; fi; exit $$rc

lock-check: $(UV)
	@PYTHON=$(PYTHON) bash .ci/lock-check

clean:
	rm -rf $(VENV) $(TOOLS) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
