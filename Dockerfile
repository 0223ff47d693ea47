# One container image, three routes (docs/containers.md):
#   * Binder        – mybinder.org builds this file (repo2docker uses a root Dockerfile as it is; Binder starts
#                     `jupyter notebook` as user NB_UID, so notebook and jupyterlab are installed);
#   * JupyterHub    – a Zero-to-JupyterHub `singleuser.image` (jupyterhub-singleuser is installed, user jovyan 1000);
#   * grading       – `stn-course grade` with bubblewrap, for a self-hosted autograder.
# Built from the project's own files, with the README's set-up command (install.py) – the CPU build of torch, the
# course with its lab, explore and (on Linux) gpu extras – and no solutions: only what `pip install` needs is copied
# in, installed as a copy, and deleted; the student lessons go to the user's home (`stn-course lessons`). The install
# steps are docker/install.sh, which tests/test_install_routes.py also runs in a fresh venv (no Docker needed).
#   docker build -t stn-course . && docker run --rm -p 8888:8888 stn-course
FROM python:3.11-slim-bookworm

ARG NB_USER=jovyan
ARG NB_UID=1000
# jupyterhub-singleuser must match the major version of the hub that spawns it (Zero to JupyterHub 4.x: JupyterHub 5)
ARG JUPYTERHUB_VERSION=5.4.6
ENV USER=${NB_USER} \
    HOME=/home/${NB_USER} \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OMP_NUM_THREADS=2

# bubblewrap: the grader's sandbox (docs/grading.md, section 4)
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bubblewrap \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --shell /bin/bash --uid ${NB_UID} ${NB_USER}

# Only what installs the package: no solutions/, tests/ or .git in the image.
COPY pyproject.toml README.md LICENSE install.py /tmp/stn-course/
COPY docker/install.sh /tmp/stn-course/docker/install.sh
COPY stn_course /tmp/stn-course/stn_course
COPY lessons /tmp/stn-course/lessons
RUN sh /tmp/stn-course/docker/install.sh /tmp/stn-course \
 && rm -rf /tmp/stn-course

USER ${NB_USER}
WORKDIR ${HOME}
# The student lessons, owned by the learner. (A JupyterHub with persistent home folders hides this copy under the
# user's volume: docs/containers.md copies them at the first start instead.)
RUN stn-course lessons lessons

EXPOSE 8888
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--ServerApp.root_dir=/home/jovyan"]
