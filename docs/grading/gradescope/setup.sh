#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image. The autograder zip holds:
#   setup.sh, run_autograder      (these two files)
#   stn-course/                   a copy of the course repository (git clone, or the release you teach)
#   seed.txt                      your secret (stn-course grade --new-seed seed.txt; never commit it)
#   assignment.txt                the lessons of this assignment, e.g. 01,02 (one notebook per lesson is graded)
#   checks/                       optional: your own hidden check modules (docs/grading.md)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
# bubblewrap: the sandbox (where the container allows namespaces; otherwise the grader says it ran unsandboxed)
apt-get install -y --no-install-recommends python3 python3-venv python3-pip bubblewrap
python3 -m venv /autograder/venv
. /autograder/venv/bin/activate
# the CPU build of PyTorch (Gradescope has no GPU) and the course, from the copy in the zip
python /autograder/source/stn-course/install.py --cpu
stn-course grade --help > /dev/null   # fails the build now rather than at the first submission
