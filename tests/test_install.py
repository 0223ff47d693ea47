"""install.py: the README's set-up command picks the CPU-only torch without a GPU and PyPI's CUDA build with one."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("course_install", ROOT / "install.py")
install = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install)


def test_plan_cpu_on_linux_uses_pytorchs_cpu_index():
    torch_cmd, course_cmd = install.plan("cpu", "Linux", ["test"], python="py")
    assert torch_cmd == ["py", "-m", "pip", "install", "torch==2.13.0", "--extra-index-url",
                         "https://download.pytorch.org/whl/cpu"]
    # JupyterLab to open the lessons, triton for lesson 7
    assert course_cmd == ["py", "-m", "pip", "install", "-e", f"{ROOT}[test,lab,gpu]"]


def test_plan_cuda_and_other_systems_use_pypi():
    torch_cmd, course_cmd = install.plan("cuda", "Linux", [], python="py")
    assert torch_cmd == ["py", "-m", "pip", "install", "torch==2.13.0"]
    assert course_cmd[-1].startswith(str(ROOT))
    assert course_cmd[-1] == f"{ROOT}[lab,gpu]"
    for system in ("Darwin", "Windows"):  # PyPI's wheels are CPU-sized there already; Triton has no wheels there
        torch_cmd, course_cmd = install.plan("cpu", system, [], python="py")
        assert torch_cmd == ["py", "-m", "pip", "install", "torch==2.13.0"]
        assert course_cmd[-1] == f"{ROOT}[lab]"


def test_the_pin_is_the_one_ci_installs():
    assert install.TORCH in (ROOT / ".ci" / "run").read_text()


class _Done:
    def __init__(self, returncode, stdout):
        self.returncode, self.stdout = returncode, stdout


def test_gpu_detection(tmp_path):
    no_proc = tmp_path / "missing"
    listed = lambda *a, **k: _Done(0, "GPU 0: NVIDIA H200 (UUID: GPU-1234)\n")  # noqa: E731
    failing = lambda *a, **k: _Done(9, "NVIDIA-SMI has failed because it couldn't communicate with the driver")  # noqa: E731
    assert install.nvidia_gpu_present(lambda _: "/usr/bin/nvidia-smi", listed, no_proc)
    assert not install.nvidia_gpu_present(lambda _: "/usr/bin/nvidia-smi", failing, no_proc)
    assert not install.nvidia_gpu_present(lambda _: None, listed, no_proc)
    proc = tmp_path / "gpus"
    (proc / "0000:01:00.0").mkdir(parents=True)
    assert install.nvidia_gpu_present(lambda _: None, listed, proc)


def test_dry_run_on_this_machine_prints_the_cpu_commands():
    out = subprocess.run([sys.executable, str(ROOT / "install.py"), "--dry-run", "--extras", "test"],
                         capture_output=True, text=True, check=True).stdout
    if install.nvidia_gpu_present():
        assert "an NVIDIA GPU is present" in out and "--extra-index-url" not in out
    else:
        assert "no NVIDIA GPU found" in out and "--extra-index-url https://download.pytorch.org/whl/cpu" in out
    assert f"-e {ROOT}[test,lab,gpu]" in out
    forced = subprocess.run([sys.executable, str(ROOT / "install.py"), "--dry-run", "--cuda"],
                            capture_output=True, text=True, check=True).stdout
    assert "--cuda -> torch==2.13.0 (PyPI's CUDA build)" in forced and "--extra-index-url" not in forced


def test_no_editable_installs_a_copy_for_a_container_image():
    _, course_cmd = install.plan("cpu", "Linux", ["explore"], python="py", editable=False)
    assert course_cmd == ["py", "-m", "pip", "install", f"{ROOT}[explore,lab,gpu]"]


def test_no_lab_leaves_jupyterlab_out_for_a_grading_machine():
    _, course_cmd = install.plan("cpu", "Linux", [], python="py", lab=False)
    assert course_cmd[-1] == f"{ROOT}[gpu]"
    assert "--no-lab" in (ROOT / "docs" / "grading" / "gradescope" / "setup.sh").read_text()
