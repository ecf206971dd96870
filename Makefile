# Lab 2.1.3: Autograd Deep Dive — the front door.
#   make            set up .venv (pinned) and build release/ and solutions/
#   make test       every gate (sets up first when needed)
#   make check      the maintainers' fast loop: ruff, import contracts, the gates and the unit tests
#   make lab        JupyterLab on your working copy of the release (student/), with Validate
#   make collect    instructor: LMS zips in downloaded/lab_2_1_3/archive/ -> submitted/
#   make autograde  instructor: grade every submission, progress and a summary
#   make export     instructor: grades.csv, one row per student and notebook
#   make feedback   instructor: feedback/<student>/lab_2_1_3/*.html (no hidden tests)
#   make report     instructor: report/lab_2_1_3.md + .png (which tests the class missed)
#   make bench-grading  stock nbgrader vs ours on a 60-notebook class, side by side
#   make hub        (root) the course on a JupyterHub with nbgrader's exchange; make hub-stop stops it
#   make handout    the release as one zip for an LMS (artifacts/handout/)
# See README.md for the student, instructor and maintainer workflows.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
ASSIGNMENT := lab_2_1_3
export PATH := $(CURDIR)/$(BIN):$(PATH)
export PYTHONPATH := $(CURDIR)

.DEFAULT_GOAL := all
.PHONY: all setup build build-all normalize lint check system-deps test hub hub-stop hub-class handout test-cuda bench bench-grading lab clean help \
	assignment collect autograde export feedback report

all: build

help:
	@sed -n 's/^#   //p' Makefile

# The venv is rebuilt only when the pinned requirements change.
$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

setup: $(STAMP)

normalize: $(STAMP)
	$(PY) -m labs.course.notebooks source/*/*.ipynb

# release/ always (fast), solutions/ only where the source changed (executed).
build: $(STAMP) normalize
	$(PY) -m labs.course.build

build-all: $(STAMP) normalize
	$(PY) -m labs.course.build --all

lint: $(STAMP)
	$(BIN)/ruff check .

# The fast loop: lint, the package's import contracts (pyproject.toml), the gates and the unit tests of
# the scan, the judge and the set-up. No corpus grading, no browser: make test runs everything.
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	LAB_DEVICE=cpu $(PY) -m pytest -q tests/test_gates.py tests/test_scan.py tests/test_judge.py \
	  tests/test_setup.py tests/test_architecture.py tests/test_feedback.py

# The system packages the tests need (bubblewrap, postgresql, chromium) and root are checked first,
# and installed with apt-get where that is possible; otherwise it stops before any test (tools/system-deps.sh).
system-deps:
	@bash tools/system-deps.sh

test: system-deps $(STAMP)
	LAB_DEVICE=cpu LAB_REQUIRE_BROWSER=1 $(PY) -m pytest
	@$(PY) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
	  && echo "A GPU is present: run 'make test-cuda' for the CUDA run." \
	  || echo "NOTE: no GPU here, so the CUDA run of the solutions (make test-cuda) was NOT done."

test-cuda: $(STAMP)
	@$(PY) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
	  || { echo "make test-cuda: no CUDA device visible to PyTorch; the CUDA run cannot be done here." >&2; exit 1; }
	LAB_DEVICE=cuda $(PY) -m pytest solutions

bench: $(STAMP)
	$(PY) -m labs.course.bench

# Stock nbgrader against ours on one synthetic class of 60 notebooks, side by side (about 15 min).
bench-grading: $(STAMP)
	$(PY) -m labs.grading.bench

# JupyterLab on localhost, opened on your working copy of the release (student/$(ASSIGNMENT)/,
# copied once, never overwritten) with nbgrader's Validate button; extra flags: make lab ARGS=--no-browser
lab: $(STAMP)
	$(PY) -m labs.course.lab $(ARGS)

# --- the instructor's grading workflow (docs/instructors.md) ----------------------
# The assignment enters the gradebook with its deadline (DUEDATE="2026-03-01 23:59:00 UTC").
assignment: $(STAMP)
	$(PY) -m nbgrader db assignment add $(ASSIGNMENT) $(if $(DUEDATE),--duedate="$(DUEDATE)")
	$(PY) -m nbgrader generate_assignment $(ASSIGNMENT) --force

collect: $(STAMP)
	$(PY) -m labs.grading collect

# Each notebook in its own sandbox (bubblewrap, cgroup), JOBS at once (default: the core count),
# or on a Dask cluster (SCHEDULER=tcp://host:8786); UNSAFE=1 only where no sandbox can be made.
autograde: $(STAMP)
	$(PY) -m labs.grading autograde $(if $(JOBS),--jobs $(JOBS)) $(if $(SCHEDULER),--scheduler $(SCHEDULER)) \
	  $(if $(UNSAFE),--unsafe)

export: $(STAMP)
	$(PY) -m labs.grading export

feedback: $(STAMP)
	$(PY) -m labs.grading feedback

report: $(STAMP)
	$(PY) -m labs.grading report

clean:
	rm -rf gradebook.db submitted autograded feedback .pytest_cache .lab-grader

# --- the course on a JupyterHub (labs/hub, hub/): as root, on the class's server ---------------
# make hub STUDENTS="alice bob": the hub in the foreground (Ctrl-C stops it); prints URL, accounts, demo password
hub: $(STAMP) build
	$(PY) -m labs.hub start $(STUDENTS)

# stops the hub and every process of its accounts; REMOVE_CLASS=1 also deletes the accounts it created
hub-stop: $(STAMP)
	$(PY) -m labs.hub stop $(if $(REMOVE_CLASS),--remove-class)

hub-class: $(STAMP)
	$(PY) -m labs.hub class $(STUDENTS)

# the release as one zip for an LMS: artifacts/handout/lab_2_1_3-handout.zip
handout: $(STAMP) build
	$(PY) -m labs.hub handout
