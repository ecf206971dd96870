#!/usr/bin/env bash
# What `make test` needs from the system, checked (and installed where it can be) before any test runs.
#
#   bubblewrap  every graded notebook runs in a bubblewrap sandbox (labs/grading/sandbox.py)
#   postgresql  a test grades into a PostgreSQL server it starts itself (tests/services.py)
#   chromium    the browser test drives Debian's Chromium through Playwright (tests/test_browser.py)
#   npm         the hub test installs JupyterHub's configurable-http-proxy from npm (labs/hub)
#   root        each sandbox gets a cgroup of its own (memory and process count of the whole submission)
#
# Missing packages are installed with apt-get where this runs as root and apt-get exists. Anywhere else
# it stops, before any test, with one message naming the exact command to run. `make` and `make lab`
# never call this: a student needs no system package and no root.
#
# Overridable for the tests of this script: LAB_CHROMIUM (the browser's path), LAB_DEPS_APT (apt-get).
set -uo pipefail

chromium=${LAB_CHROMIUM:-/usr/bin/chromium}
apt=${LAB_DEPS_APT:-apt-get}

missing_packages() {
  local missing=()
  command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
  if ! { command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; } \
     || ! id postgres >/dev/null 2>&1; then
    missing+=(postgresql)
  fi
  [[ -x $chromium ]] || missing+=(chromium)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  echo "${missing[*]}"
}

missing=$(missing_packages)
uid=$(id -u)

if [[ -n $missing ]]; then
  if [[ $uid -eq 0 ]] && command -v "$apt" >/dev/null 2>&1; then
    echo "make test: installing the Debian packages its tests need: $missing (once; a minute or two)"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086  # one word per package
    if ! { "$apt" update -qq && "$apt" install -y -qq $missing; }; then
      echo "make test: could not install $missing with apt-get (see above); no test was run." >&2
      exit 1
    fi
    missing=$(missing_packages)
    if [[ -n $missing ]]; then
      echo "make test: apt-get ran but $missing is still missing; no test was run." >&2
      exit 1
    fi
  else
    why="not root"
    [[ $uid -eq 0 ]] && why="no apt-get"
    echo "make test: the tests need the Debian packages: $missing ($why, so they cannot be installed here)." >&2
    echo "Run:  sudo apt-get update && sudo apt-get install -y $missing   then: sudo make test" >&2
    echo "(no test was run)" >&2
    exit 1
  fi
fi

if [[ $uid -ne 0 ]]; then
  echo "make test: the grading tests must run as root: each sandboxed notebook gets a cgroup of its own." >&2
  echo "Run:  sudo make test" >&2
  echo "(no test was run)" >&2
  exit 1
fi
exit 0
