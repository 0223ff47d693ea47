#!/bin/sh
# The container image's install steps, in one place: the Dockerfile runs this script, and
# tests/test_install_routes.py runs it in a fresh venv (machines without Docker or a pullable base image).
#
#   JUPYTERHUB_VERSION=5.4.6 sh docker/install.sh SRC
#
# SRC holds what the Dockerfile copies (pyproject.toml, README.md, LICENSE, install.py, stn_course/, lessons/);
# `python` on PATH is the interpreter that gets the course (the image's, or a venv's). Installs the README's set-up
# (install.py: the CPU build of torch, the course as a copy with its lab, explore and – on Linux – gpu extras), then
# what Binder and a JupyterHub start (jupyterhub-singleuser of the hub's major version, `jupyter notebook`).
set -eu
src="${1:?usage: sh docker/install.sh SRC (the folder holding install.py and the package)}"
: "${JUPYTERHUB_VERSION:?set JUPYTERHUB_VERSION (the Dockerfile's ARG) to the hub's version}"
python "$src/install.py" --cpu --no-editable --extras explore
python -m pip install "jupyterhub==${JUPYTERHUB_VERSION}" "notebook>=7"
stn-course --help > /dev/null
