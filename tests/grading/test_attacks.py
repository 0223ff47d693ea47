"""The grader against a class that attacks it: every attack class of the "grader holds" issue as a submission a
student could hand in, graded in one sandboxed batch beside clean solutions.

Each attack would earn full marks on its exercise if the guard did not hold (it computes the right answer with
what the exercise bans, or reaches for the grader's own machinery). It must earn nothing there, cost nothing
elsewhere, leave every other submission's score as it was, and put nothing of the hidden cases in any output.
"""
from __future__ import annotations

import json
import re

import pytest

from .helpers import LESSONS, SOLUTIONS, exercise, grade, patched, solution, with_cell, write_submission

TIMEOUT = 20.0
NAME1, LESSON1 = solution("01")
NAME2, LESSON2 = solution("02")
NAME4, LESSON4 = solution("04")
NAME6, LESSON6 = solution("06")
ROTATION = "    c, s = math.cos(angle), math.sin(angle)\n"  # the first line of 01.rotation_matrix's solution
PACKAGE_ROTATION = "torch.tensor(float(angle), dtype=torch.float64)"
SAMPLER = ('def bilinear_sample(input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros",\n'
           '                    align_corners: bool = False) -> torch.Tensor:\n')


def _in_rotation(code: str, nb: dict = LESSON1) -> dict:
    """Lesson 1 with ``code`` at the start of ``rotation_matrix`` (the exercise's function)."""
    return patched(nb, ROTATION, "".join(f"    {line}\n" for line in code.splitlines()) + ROTATION)


def _in_sampler(code: str) -> dict:
    return patched(LESSON2, SAMPLER, SAMPLER + "".join(f"    {line}\n" for line in code.splitlines()))


def _interp_in_numpy_sampler(lerp_body: str) -> dict:
    """Lesson 2's NumPy sampler interpolating its rows with a 1-D routine it bans: ``lerp_body`` is the body of a
    ``lerp_1d(signal, x)`` (torch tensors) called on the flattened input before the honest code."""
    np_def = next(line for line in _lines(LESSON2) if line.startswith("def bilinear_sample_np("))
    nested = "".join(f"    {line}\n" for line in lerp_body.splitlines())
    return patched(LESSON2, np_def, np_def + "    def lerp_1d(signal, x):\n" + nested
                   + "    lerp_1d(torch.from_numpy(input.reshape(-1)), torch.from_numpy(grid[..., 0].reshape(-1)))\n")


# -- the package's own function, however it is reached -----------------------------------------------------------
ROTATION_ATTACKS = {
    # rebuilt from the package's code object with another first line number
    "code_replace": ("import types, stn_course.affine as A\n"
                     "code = A.rotation.__code__.replace(co_firstlineno=A.rotation.__code__.co_firstlineno + 7)\n"
                     "copy = types.FunctionType(code, A.rotation.__globals__, 'mine', A.rotation.__defaults__)\n"
                     f"return copy({PACKAGE_ROTATION})"),
    # the package's own source compiled again, shifted by one line, under another file name
    "exec_shifted_source": ("import inspect, stn_course.affine as A\n"
                            "ns = {'__name__': 'stn_course.notes', '__package__': 'stn_course'}\n"
                            "exec(compile('\\n' + inspect.getsource(A), 'my_notes.py', 'exec'), ns)\n"
                            f"return ns['rotation']({PACKAGE_ROTATION})"),
    # switching the ban hook off first
    "setprofile_none": ("import sys, stn_course.affine as A\ntry:\n    sys.setprofile(None)\nexcept Exception:\n"
                        f"    pass\nreturn A.rotation({PACKAGE_ROTATION})"),
    "cprofile_replaces_hook": ("import cProfile, stn_course.affine as A\ntry:\n    cProfile.Profile().enable()\n"
                               f"except Exception:\n    pass\nreturn A.rotation({PACKAGE_ROTATION})"),
    "settrace": ("import sys, stn_course.affine as A\ntry:\n    sys.settrace(lambda *a: None)\nexcept Exception:\n"
                 f"    pass\nreturn A.rotation({PACKAGE_ROTATION})"),
    # from a thread the hook should not reach
    "thread_without_hook": ("import threading, stn_course.affine as A\nthreading._profile_hook = None\nbox = []\n"
                            f"t = threading.Thread(target=lambda: box.append(A.rotation({PACKAGE_ROTATION})))\n"
                            "t.start()\nt.join()\nreturn box[0]"),
    "raw_thread": ("import _thread, time, stn_course.affine as A\nbox = []\n"
                   f"_thread.start_new_thread(lambda: box.append(A.rotation({PACKAGE_ROTATION})), ())\n"
                   "for _ in range(200):\n    if box:\n        break\n    time.sleep(0.01)\nreturn box[0]"),
    # catching the ban and trying again
    "catches_the_ban": ("import stn_course.affine as A\nfor _ in range(3):\n    try:\n"
                        f"        return A.rotation({PACKAGE_ROTATION})\n    except BaseException:\n        pass"),
    # reaching for the guard's state
    "gc_and_frames": ("import gc, sys, stn_course.affine as A\ntry:\n    gc.get_objects()\nexcept Exception:\n"
                      "    pass\nframe = sys._getframe()\nwhile frame is not None:\n"
                      "    for value in list(frame.f_locals.values()):\n        if isinstance(value, dict):\n"
                      "            value.pop('armed', None)\n    frame = frame.f_back\n"
                      f"return A.rotation({PACKAGE_ROTATION})"),
    "ctypes": ("import ctypes, stn_course.affine as A\ntry:\n"
               "    ctypes.pythonapi.PyEval_SetProfile(None, None)\nexcept Exception:\n    pass\n"
               f"return A.rotation({PACKAGE_ROTATION})"),
    # running the package's computation without running its code: TorchDynamo (eager backend, no compiler)
    "torch_compile_eager": ("import stn_course.affine as A\n"
                            f"return torch.compile(A.rotation, backend='eager')({PACKAGE_ROTATION})"),
    "a_new_program": ("import subprocess, sys\ntry:\n    out = subprocess.run([sys.executable, '-c', 'import stn_course'],"
                      " capture_output=True)\nexcept Exception:\n    pass\n"
                      f"import stn_course.affine as A\nreturn A.rotation({PACKAGE_ROTATION})"),
}

CELL_ATTACKS = {  # a cell after the setup cell, then rotation_matrix delegates to the package
    # the harness's arming switched off in the process the graded copies are forked from
    "patches_arm": "import stn_course.grading.guard as g\ng.arm = lambda *args, **kwargs: True",
    "patches_processes": ("import stn_course.grading.processes as p\n"
                          "p._Holder.caller = lambda self, header: None"),
    "patches_shortcut_scan": ("import stn_course.checks.shortcuts as s\ns.find_shortcut = lambda *a, **k: None\n"
                              "import stn_course.grading.namespace as n\nn.cpu_limit = n.cpu_limit"),
    "arms_itself_first": "import stn_course.grading.guard as g\ng.arm('02.affine_grid')",
    "replaces_code_objects": ("import stn_course.grading.guard as g\ntry:\n"
                              "    g.arm.__code__ = (lambda *a, **k: True).__code__\nexcept Exception:\n    pass"),
    # a trace of the package's function taken in a cell (unguarded), replayed in the graded call
    "make_fx_trace": ("import stn_course.affine as A\nfrom torch.fx.experimental.proxy_tensor import make_fx\n"
                      "TRACED = make_fx(lambda a: A.rotation(a))(torch.tensor(0.3, dtype=torch.float64))"),
    "torchscript_trace": ("import stn_course.affine as A\n"
                          "TRACED = torch.jit.trace(A.rotation, torch.tensor(0.3, dtype=torch.float64))"),
    "service_thread": ("import threading, time, stn_course.affine as A\nREQUESTS = []\n"
                       "def serve():\n    while True:\n        while REQUESTS:\n            angle, box = REQUESTS.pop()\n"
                       "            box.append(A.rotation(torch.tensor(angle, dtype=torch.float64)))\n"
                       "        time.sleep(0.001)\nthreading.Thread(target=serve, daemon=True).start()"),
}
SERVICE_CALL = "box = []\nREQUESTS.append((float(angle), box))\nimport time\nfor _ in range(2000):\n    if box:\n" \
               "        return box[0]\n    time.sleep(0.001)\nraise RuntimeError('the service did not answer')"
DELEGATE = f"import stn_course.affine as A\nreturn A.rotation({PACKAGE_ROTATION})"
REPLAY = f"return TRACED({PACKAGE_ROTATION})"

# -- torch's kernels by another route ------------------------------------------------------------------------------
ATEN_3D = ("padding = {'zeros': 0, 'border': 1, 'reflection': 2}[padding_mode]\n"
           "g3 = torch.cat([grid, torch.zeros_like(grid[..., :1])], -1)[:, None]\n"
           "return torch.ops.aten.grid_sampler_3d(input[:, :, None], g3, 0, padding, align_corners)[:, :, 0]")
GRAD_3D = ("    padding = {'zeros': 0, 'border': 1, 'reflection': 2}[padding_mode]\n"
           "    g3 = torch.cat([grid, torch.zeros_like(grid[..., :1])], -1)[:, None]\n"
           "    gi, _ = torch.ops.aten.grid_sampler_3d_backward(grad_output[:, :, None], input[:, :, None], g3, 0, "
           "padding, align_corners, [True, False])\n    return gi[:, :, 0]\n")
CONV = ("    return torch.ops.aten._convolution(input, weight, bias, list(stride), list(padding), list(dilation), "
        "False, [0, 0], 1, False, False, True, True)\n")
NUMPY_C = ("    import numpy as np\n    from numpy._core import multiarray\n"
           "    values = multiarray.interp(x.numpy(), np.arange(signal.shape[0], dtype=np.float64), signal.numpy(), "
           "0.0, 0.0)\n    return torch.from_numpy(values).to(signal.dtype)\n")

# Found by a red-team review: autograd's own graph nodes called one by one (no engine), a convolution kernel by
# another name (conv_tbc_backward), the package's function cloned with an unused extra constant, NumPy's
# interp_complex, SciPy's sampler
MANUAL_BACKWARD = (
    "def _manual_backward(loss, leaves):\n    order, seen = [], set()\n    def visit(node):\n"
    "        if node is None or id(node) in seen:\n            return\n        seen.add(id(node))\n"
    "        for nxt, _ in node.next_functions:\n            visit(nxt)\n        order.append(node)\n"
    "    visit(loss.grad_fn)\n    grads = {id(loss.grad_fn): {0: torch.ones_like(loss)}}\n    out = {}\n"
    "    for node in reversed(order):\n        g = grads.pop(id(node), None)\n        if g is None:\n"
    "            continue\n        g = [g.get(k) for k in range(max(g) + 1)]\n        if hasattr(node, 'variable'):\n"
    "            out[id(node.variable)] = g[0]\n            continue\n        res = node(*g)\n"
    "        res = res if isinstance(res, tuple) else (res,)\n"
    "        for (nxt, idx), r in zip(node.next_functions, res):\n            if nxt is None or r is None:\n"
    "                continue\n            slot = grads.setdefault(id(nxt), {})\n"
    "            slot[idx] = r if slot.get(idx) is None else slot[idx] + r\n"
    "    return [out.get(id(l), torch.zeros_like(l)) for l in leaves]")
GRAPH_WALK = ("    from stn_course import sampling as _smp\n    x = input.detach().clone().requires_grad_()\n"
              "    loss = (grad_output * _smp.bilinear_sample(x, grid, padding_mode, align_corners)).sum()\n"
              "    return _manual_backward(loss, [x])[0]\n")
TBC = ("    import torch.nn.functional as F\n"
       "    def corr1d(x, w):\n        B, C, L = x.shape\n        O, _, K = w.shape\n        T = L - K + 1\n"
       "        gi, _, _ = torch.ops.aten.conv_tbc_backward(x.permute(2, 0, 1).contiguous(), "
       "torch.zeros(T, B, O, dtype=x.dtype), w.permute(2, 0, 1).flip(0).contiguous(), torch.zeros(C, dtype=x.dtype), "
       "K - 1)\n        return gi.permute(1, 2, 0)\n"
       "    n, c, h, w = input.shape\n    o, _, kh, kw = weight.shape\n    (sh, sw), (ph, pw), (dh, dw) = stride, "
       "padding, dilation\n    x = F.pad(input, (pw, pw, ph, ph))\n    H, W = x.shape[-2:]\n"
       "    h_out = (H - dh * (kh - 1) - 1) // sh + 1\n    w_out = (W - dw * (kw - 1) - 1) // sw + 1\n"
       "    wd = torch.zeros(o, c, kh, dw * (kw - 1) + 1, dtype=weight.dtype)\n    wd[..., ::dw] = weight\n"
       "    out = 0\n    for i in range(kh):\n        rows = x[:, :, i * dh: i * dh + sh * (h_out - 1) + 1: sh, :]\n"
       "        r = rows.permute(0, 2, 1, 3).reshape(n * h_out, c, W)\n"
       "        y = corr1d(r, wd[:, :, i, :])[..., : sw * (w_out - 1) + 1: sw]\n"
       "        out = out + y.reshape(n, h_out, o, w_out).permute(0, 2, 1, 3)\n"
       "    return out if bias is None else out + bias.view(1, -1, 1, 1)\n")
CLONE_CELL = ("import types, stn_course.grids\nCLONED = dict(vars(stn_course.grids))\n"
              "for k, v in list(CLONED.items()):\n"
              "    if isinstance(v, types.FunctionType) and v.__module__ == 'stn_course.grids':\n"
              "        c = v.__code__\n        CLONED[k] = types.FunctionType(c.replace(co_consts=c.co_consts + ('cl0ne',)),"
              " CLONED, v.__name__, v.__defaults__, v.__closure__)")
INTERP_COMPLEX = ("    import numpy as np\n    from numpy._core import multiarray as m\n"
                  "    L = signal.shape[0]\n    values = m.interp_complex(x.numpy(), np.arange(-1.0, L + 1.0), "
                  "np.r_[0, signal.numpy(), 0].astype(complex), 0, 0).real.copy()\n"
                  "    return torch.from_numpy(values).to(signal.dtype)\n")
MAP_COORDINATES = ("    from scipy import ndimage\n    n, c, h, w = input.shape\n"
                   "    x = ((grid[..., 0] + 1) * w - 1) / 2\n    y = ((grid[..., 1] + 1) * h - 1) / 2\n"
                   "    out = np.zeros((n, c) + x.shape[1:], dtype=input.dtype)\n    for i in range(n):\n"
                   "        for j in range(c):\n            out[i, j] = ndimage.map_coordinates(input[i, j], [y[i], x[i]], "
                   "order=1, mode='grid-constant', cval=0.0)\n    return out\n")

# Found by a second red-team review: the package's own building blocks under a sampler, sliding windows as im2col,
# SciPy's linear spline
# lesson 6's convolution with the tap positions taken from the package's deformable helper at zero offsets
POSITIONS_VIA_PACKAGE = (
    "    from stn_course.deform import sampling_positions as _sp\n    n, _, h, w = input.shape\n"
    "    kh, kw = weight.shape[-2:]\n"
    "    h_out = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1\n"
    "    w_out = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1\n"
    "    pos = _sp(torch.zeros(1, 2 * kh * kw, h_out, w_out, dtype=input.dtype), (kh, kw), stride, padding, "
    "dilation)[0, 0]\n    out = 0\n    for k in range(kh * kw):\n"
    "        s = bilinear_sample_pixels(input, x=pos[k, ..., 1].expand(n, -1, -1),\n"
    "                                   y=pos[k, ..., 0].expand(n, -1, -1))\n"
    "        out = out + torch.einsum('oc,nchw->nohw', weight[:, :, k // kw, k % kw], s)\n"
    "    return out if bias is None else out + bias.view(1, -1, 1, 1)\n")
UNFOLD_CONV = ("    import torch.nn.functional as _F\n    kh, kw = weight.shape[-2:]\n"
               "    xp = _F.pad(input, (padding[1], padding[1], padding[0], padding[0]))\n"
               "    win = xp.unfold(2, dilation[0] * (kh - 1) + 1, stride[0]).unfold(3, dilation[1] * (kw - 1) + 1, "
               "stride[1])[..., ::dilation[0], ::dilation[1]]\n"
               "    out = torch.einsum('nchwij,ocij->nohw', win, weight)\n"
               "    return out if bias is None else out + bias.view(1, -1, 1, 1)\n")
SPLINE = ("    import numpy as _np\n    from scipy.interpolate import InterpolatedUnivariateSpline as _IUS\n"
          "    L = signal.shape[0]\n    out = _IUS(_np.arange(-1.0, L + 1.0), _np.concatenate([[0.0], "
          "signal.double().numpy(), [0.0]]), k=1, ext=1)(x.double().numpy())\n"
          "    return torch.from_numpy(out).to(signal.dtype)\n")

# -- honest code that must keep full marks -------------------------------------------------------------------------
HONEST = {
    "threads": ("from concurrent.futures import ThreadPoolExecutor\nprint('computing', angle)\n"
                "with ThreadPoolExecutor(2) as pool:\n    c, s = pool.submit(math.cos, angle).result(), "
                "pool.submit(math.sin, angle).result()\n"
                "return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)"),
    "processes": ("import multiprocessing as mp\nwith mp.get_context('fork').Pool(2) as pool:\n"
                  "    c, s = pool.map(math.cos, [angle])[0], pool.map(math.sin, [angle])[0]\n"
                  "return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)"),
}

HIDDEN_LEAK = ("if abs(angle) > 6.3 or 0 < abs(angle) < 1e-6:  # only the hidden cases go beyond a turn, or tiny\n"
               "    raise ValueError(f'LEAK-{angle!r}-' + 'x' * 5000)")
LEAK_WORST_ERROR = ("if abs(angle) > 6.3:\n    c, s = math.cos(angle), math.sin(angle)\n"
                    "    return torch.tensor([[c, -s, 1.234567e-9], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)")


def _course_file_cell(path: str) -> str:
    return (f"import json\nnb = json.load(open({path!r}))\n"
            "for cell in nb['cells']:\n    if cell['cell_type'] == 'code':\n"
            "        try:\n            exec(''.join(cell['source']), globals())\n        except Exception:\n"
            "            pass")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attacks")
    write_submission(folder, "clean1", NAME1, LESSON1)
    write_submission(folder, "clean2", NAME2, LESSON2)
    for name, code in ROTATION_ATTACKS.items():
        write_submission(folder, f"fn-{name}", NAME1, _in_rotation(code))
    for name, cell in CELL_ATTACKS.items():
        code = {"service_thread": SERVICE_CALL, "make_fx_trace": REPLAY, "torchscript_trace": REPLAY}.get(name, DELEGATE)
        write_submission(folder, f"cell-{name}", NAME1, _in_rotation(code, with_cell(LESSON1, cell)))
    for name, code in HONEST.items():
        write_submission(folder, f"honest-{name}", NAME1, _in_rotation(code))
    write_submission(folder, "aten-grid-sampler-3d", NAME2, _in_sampler(ATEN_3D))
    grad_def = 'def sampler_backward(grad_output, input, grid, padding_mode="zeros", align_corners=False):\n'
    write_submission(folder, "aten-3d-backward", NAME4, patched(LESSON4, grad_def, grad_def + GRAD_3D))
    conv_def = "def conv2d_by_sampling(input, weight, bias, stride, padding, dilation):\n"
    write_submission(folder, "aten-convolution", NAME6, patched(LESSON6, conv_def, conv_def + CONV))
    write_submission(folder, "numpy-c-interp", NAME2, _interp_in_numpy_sampler(NUMPY_C))
    write_submission(folder, "graph-walk", NAME4, patched(with_cell(LESSON4, MANUAL_BACKWARD), grad_def,
                                                          grad_def + GRAPH_WALK))
    write_submission(folder, "conv-tbc-backward", NAME6, patched(LESSON6, conv_def, conv_def + TBC))
    affine_def = next(line for line in _lines(LESSON2) if line.startswith("def affine_grid("))
    write_submission(folder, "clone-extra-constant", NAME2, patched(
        with_cell(LESSON2, CLONE_CELL), affine_def, affine_def + "    return CLONED['affine_grid'](theta, size, "
                                                               "align_corners)\n"))
    write_submission(folder, "numpy-interp-complex", NAME2, _interp_in_numpy_sampler(INTERP_COMPLEX))
    np_def_solution = next(line for line in _lines(LESSON2) if line.startswith("def bilinear_sample_np("))
    write_submission(folder, "scipy-map-coordinates", NAME2, patched(LESSON2, np_def_solution,
                                                                     np_def_solution + MAP_COORDINATES))
    write_submission(folder, "package-building-block", NAME6, patched(LESSON6, conv_def,
                                                                      conv_def + POSITIONS_VIA_PACKAGE))
    write_submission(folder, "unfold-windows", NAME6, patched(LESSON6, conv_def, conv_def + UNFOLD_CONV))
    write_submission(folder, "scipy-spline", NAME2, _interp_in_numpy_sampler(SPLINE))
    # a sibling the notebook left as its stub, called where the exercise does not build on it
    stub2 = json.loads(next(LESSONS.glob("02_*.ipynb")).read_text())
    np_def = ("def bilinear_sample_np(input: np.ndarray, grid: np.ndarray, align_corners: bool = False) "
              "-> np.ndarray:\n")
    write_submission(folder, "sibling-stand-in", NAME2, patched(
        stub2, np_def, np_def + "    import torch as _t\n    return bilinear_sample(_t.from_numpy(input), "
                                "_t.from_numpy(grid), 'zeros', align_corners).numpy()\n"))
    # the course's solutions and a classmate's notebook, read from inside the sandbox
    stub1 = json.loads(next(LESSONS.glob("01_*.ipynb")).read_text())
    write_submission(folder, "reads-solutions", NAME1, with_cell(stub1, _course_file_cell(str(SOLUTIONS / NAME1))))
    write_submission(folder, "reads-classmate", NAME1,
                     with_cell(stub1, _course_file_cell(str(folder / "clean1" / NAME1))))
    # hidden cases and what feedback says about them
    write_submission(folder, "hidden-leak", NAME1, _in_rotation(HIDDEN_LEAK))
    write_submission(folder, "worst-error-channel", NAME1, _in_rotation(LEAK_WORST_ERROR))
    write_submission(folder, "forges-missing", NAME1, with_cell(LESSON1, (
        "import stn_course.grading.namespace as n\n"
        "n.Notebook.begin_exercise = lambda self, request: {'state': 'missing', 'message': 'FORGED-' + 'y' * 9000}")))
    # a symbolic link handed in as a notebook
    (folder / "linker").mkdir()
    (folder / "linker" / NAME1).symlink_to(SOLUTIONS / NAME1)
    return folder, grade([folder], jobs=2, timeout=TIMEOUT)


def _lines(nb: dict) -> list[str]:
    return [line + "\n" for cell in nb["cells"] if cell["cell_type"] == "code"
            for line in "".join(cell["source"]).splitlines()]


@pytest.fixture(scope="module")
def results(batch):
    return batch[1]


def _only_loses(result, check_id: str) -> None:
    broken = exercise(result, check_id)
    assert broken.score == 0, (broken.status, broken.feedback)
    others = {e.id: (e.status, e.feedback) for e in result.exercises if e.id != check_id and e.score < e.max_score}
    assert not others, others


def test_clean_submissions_keep_full_marks(results):
    for name in ("clean1", "clean2"):
        assert results[name].score == results[name].max_score > 0


@pytest.mark.parametrize("name", sorted(ROTATION_ATTACKS))
def test_the_package_by_any_route_is_a_banned_call(results, name):
    result = results[f"fn-{name}"]
    _only_loses(result, "01.rotation_matrix")
    broken = exercise(result, "01.rotation_matrix")
    assert broken.status == "banned call", (broken.status, broken.feedback)


@pytest.mark.parametrize("name", sorted(CELL_ATTACKS))
def test_patching_the_grader_in_a_cell_earns_nothing(results, name):
    result = results[f"cell-{name}"]
    broken = exercise(result, "01.rotation_matrix")
    assert broken.score == 0, (broken.status, broken.feedback)
    if name in ("make_fx_trace", "torchscript_trace"):  # the tracing cell ended its process: no trace exists
        assert any(f["rule"] == "refused by the guard" and "tracing" in f["text"] for f in result.review)
    elif name != "service_thread":  # (a thread of the notebook's process is not in the graded copy, nor running)
        assert broken.status == "banned call", (broken.status, broken.feedback)
    if "grading" in CELL_ATTACKS[name]:
        assert result.review, "the grader's modules in a cell are flagged for review"


@pytest.mark.parametrize("name, check_id", [("aten-grid-sampler-3d", "02.bilinear_sample"),
                                            ("aten-3d-backward", "04.sampler_backward"),
                                            ("aten-convolution", "06.conv2d_by_sampling"),
                                            ("numpy-c-interp", "02.bilinear_sample_np"),
                                            ("conv-tbc-backward", "06.conv2d_by_sampling"),
                                            ("numpy-interp-complex", "02.bilinear_sample_np"),
                                            ("scipy-map-coordinates", "02.bilinear_sample_np"),
                                            ("clone-extra-constant", "02.affine_grid"),
                                            ("package-building-block", "06.conv2d_by_sampling"),
                                            ("unfold-windows", "06.conv2d_by_sampling"),
                                            ("scipy-spline", "02.bilinear_sample_np")])
def test_torch_and_numpy_kernels_by_another_route_are_banned(results, name, check_id):
    result = results[name]
    _only_loses(result, check_id)
    broken = exercise(result, check_id)
    assert broken.status == "banned call", (broken.status, broken.feedback)
    assert result.review or name in ("scipy-map-coordinates", "scipy-spline", "unfold-windows",
                                     "package-building-block")


def test_autograd_is_off_where_a_gradient_is_derived_by_hand(results):
    """Walking autograd's graph by hand (calling its nodes, no engine) finds no graph: autograd is off in the
    graded call of an exercise that bans it, and switching it back on is a banned call."""
    _only_loses(results["graph-walk"], "04.sampler_backward")


def test_a_sibling_the_exercise_does_not_build_on_is_not_a_stand_in(results):
    broken = exercise(results["sibling-stand-in"], "02.bilinear_sample_np")
    assert broken.score == 0 and broken.status in ("missing", "error"), (broken.status, broken.feedback)


@pytest.mark.parametrize("name", ["reads-solutions", "reads-classmate"])
def test_the_sandbox_shows_neither_the_course_nor_classmates(results, name):
    result = results[name]
    assert result.score == 0
    assert any("FileNotFoundError" in c["error"] or "PermissionError" in c["error"] for c in result.cells)
    assert any(f["rule"] == "course files" for f in result.review) or name == "reads-classmate"


def test_a_symbolic_link_is_refused(results):
    result = results["linker"]
    assert result.error is not None and "symbolic link" in result.error and result.score == 0


def test_nothing_of_a_hidden_case_comes_back(batch):
    folder, results = batch
    leak = results["hidden-leak"]
    rotation = exercise(leak, "01.rotation_matrix")
    assert 0 < rotation.score < rotation.max_score  # visible cases pass, hidden ones raise
    assert "LEAK" not in rotation.feedback and "hidden" not in rotation.feedback
    assert "LEAK" not in rotation.hidden_feedback and "hidden cases; the first failure raised an error" in \
        rotation.hidden_feedback and not rotation.hidden_feedback.startswith("passed all")
    channel = exercise(results["worst-error-channel"], "01.rotation_matrix")
    assert channel.score == channel.max_score
    assert "1.2e-09" not in channel.feedback and "worst error 0" in channel.feedback
    forged = results["forges-missing"]
    assert all("FORGED" not in e.feedback and len(e.feedback) < 2000 for e in forged.exercises)
    everything = json.dumps([r.as_json() for r in results.values()])
    assert "LEAK-" not in everything and "FORGED" not in everything


def test_guard_reports_without_the_nonce_are_dropped_and_counted():
    import socket

    from stn_course.grading.sandbox import Session

    ours, theirs = socket.socketpair()
    session = Session(None, 0, socket.socket(), ours, "n0nce")
    theirs.sendall(b"n0nce armed 01.rotation_matrix 7\nforged armed 01.rotation_matrix 8\nn0nce banned x")
    assert session.reports() == [("armed", "01.rotation_matrix 7")] and session.forged == 1
    theirs.sendall(b"\n")
    assert session.reports() == [("banned", "x")]


@pytest.mark.parametrize("name", sorted(HONEST))
def test_honest_threads_and_processes_keep_full_marks(results, name):
    result = results[f"honest-{name}"]
    assert result.score == result.max_score, [(e.id, e.status, e.feedback) for e in result.exercises
                                              if e.score < e.max_score]


def test_the_solutions_raise_no_review_flag():
    from stn_course.grading.review import review
    from stn_course.grading.submissions import load

    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        flags = review(load(path, "x").cells)
        assert not flags, (path.name, flags[:3])


def test_every_flag_shows_its_line(results):
    flags = results["cell-patches_arm"].review
    assert any(re.search(r"stn_course\.grading\.guard", f["text"]) for f in flags)
