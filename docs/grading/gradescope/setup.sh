#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image. `stn-course gradescope-zip OUT.zip
# --seed-file seed.txt --assignment 01,02` builds the zip, which holds (docs/grading.md, section 7):
#   setup.sh, run_autograder      (these two files)
#   stn-course/                   the part of the course that grades: pyproject.toml, install.py, stn_course/
#   seed.txt                      your secret (stn-course grade --new-seed seed.txt; never commit it)
#   assignment.txt                the lessons of this assignment, e.g. 01,02 (one notebook per lesson is graded)
#   checks/                       optional: your own hidden check modules (docs/grading.md)
#
# Images: Gradescope's Ubuntu 22.04 base image (its python3 is 3.10) and 24.04 (3.12); the course needs Python 3.10+.
# Tested: the steps after apt-get with Python 3.10.13 and 3.11 in a venv on Debian (tests/grading/test_gradescope.py
# runs them as a dry run; CI runs that test on 3.10) – not inside Gradescope's Docker image, which the test machines
# cannot pull. Needs the network (PyPI and download.pytorch.org) while the image is built, as Gradescope's builds have.
#
# Environment (for trying it locally and for the tests; Gradescope sets none of them):
#   AUTOGRADER_ROOT     instead of /autograder
#   STN_SETUP_SKIP_APT  1: do not apt-get (the system already has python3, python3-venv, bubblewrap)
#   STN_SETUP_PYTHON    the interpreter that makes the venv (default: python3)
#   STN_SETUP_DRY_RUN   1: make the venv (without pip), print the install commands, install nothing
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${STN_SETUP_PYTHON:-python3}"
if [ "${STN_SETUP_SKIP_APT:-0}" != 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # bubblewrap: the sandbox (where the container allows namespaces; otherwise the grader says it ran unsandboxed)
    apt-get install -y --no-install-recommends python3 python3-venv python3-pip bubblewrap
fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { echo "setup.sh: $PYTHON is Python $("$PYTHON" -V 2>&1); stn-course needs 3.10 or newer" >&2; exit 1; }
if [ "${STN_SETUP_DRY_RUN:-0}" = 1 ]; then venv_options=(--without-pip); else venv_options=(); fi
"$PYTHON" -m venv "${venv_options[@]}" "$ROOT/venv"
. "$ROOT/venv/bin/activate"
# the CPU build of PyTorch (Gradescope has no GPU) and the course, from the copy in the zip (with triton, whose
# interpreter grades lesson 7's kernel on the CPU; without JupyterLab, which grading never opens)
if [ "${STN_SETUP_DRY_RUN:-0}" = 1 ]; then
    python "$ROOT/source/stn-course/install.py" --cpu --no-lab --dry-run
    exit 0
fi
python "$ROOT/source/stn-course/install.py" --cpu --no-lab
stn-course grade --help > /dev/null   # fails the build now rather than at the first submission
