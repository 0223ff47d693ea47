"""The guard in the sandboxed child: banned calls that cannot be switched off from inside, and the few things no
submission may do while it is graded (classroom grading).

Everything here runs in the learner's own process, where Python lets code reach almost any object. So the guard
keeps its state where Python code cannot reach it, and the grader trusts only what it can check from its own side:

* **A vault.** :func:`install` registers an *audit hook* (PEP 578) in every child before any learner code runs.
  An audit hook cannot be removed from Python, and nothing references it but the interpreter, so its private
  state (the grader's channel, a nonce, the real ``sys.setprofile`` and ``_thread.start_new_thread``, the ban plans)
  is out of reach. It refuses what would open the rest of the process to the learner – ``ctypes``, the garbage
  collector's object lists, other threads' frames, ``sys.setprofile``/``settrace`` (a profiler would replace the
  ban hook), replacing a function's ``__code__``, starting programs, reading ``/proc/*/mem`` – and tells the
  grader, over a socket only the grader reads, with the nonce only the grader knows.
* **Arming.** A graded call runs in a fresh copy of the notebook's process (see :mod:`.processes`). Before it
  receives any input, that copy asks the vault to *arm* it for one exercise, once: the vault installs the ban hook
  in the thread (and in every thread started later: ``_thread.start_new_thread`` goes through the vault) and
  replaces the banned ATen kernels at torch's dispatcher, then reports ``armed <check id>`` to the grader. The
  grader sends no case before that report, so a notebook that patched the harness gains nothing by not arming.
* **Bans by what code is, not what it is called.** A banned Python function (the package's reference, torch's
  ``F.grid_sample``, ``torch.autograd.grad``) is recognised by a fingerprint of its bytecode, names and constants
  – not by its identity, file or line numbers – so a copy rebuilt with ``code.replace`` or ``exec`` of the
  package's source is still banned. Banned ATen operators (``grid_sampler_2d/3d`` and their backwards, every
  convolution kernel, ``im2col``…) are replaced at the dispatcher for every thread, however they are reached.
* **Stand-ins with fixed targets.** Where an exercise builds on another (``Check.builds_on``), the other's name
  is a *stand-in* whose code holds the registry's reference as a constant. Banned code called from inside a
  stand-in is allowed only through trusted frames (code that existed before any learner code ran) and only the
  banned functions that reference was seen to use.
* **A trip ends the copy.** The vault reports ``banned <name>`` and kills the process: a ``try``/``except`` cannot
  hide it, and nothing the learner computed after it is sent.

What it cannot stop is written down in ``docs/grading.md`` (threat model). It is a guard, and the grader's own
process – which holds the references, the seed and the comparisons – is the boundary.
"""
from __future__ import annotations

import builtins
import gc
import os
import sys
import types
from typing import Any, Iterable

from ..checks.equivalents import OPS_MATCHING

__all__ = ["TAG", "fingerprint", "Plan", "plan_for", "install", "arm", "start_new_thread", "make_stand_in",
           "harness_backward", "trusted_code_ids", "TRIP_EXIT"]

TAG = "stn-course.guard"  # the audit event the vault answers
TRIP_EXIT = 86  # the exit status of a copy the vault ended after a banned call

# Events refused while any learner code may run, and what the learner is told.
_REFUSED_PREFIXES = ("ctypes.",)
_REFUSED = {
    "gc.get_objects": "the garbage collector's object lists",
    "gc.get_referrers": "the garbage collector's object lists",
    "gc.get_referents": "the garbage collector's object lists",
    "sys._current_frames": "other threads' frames",
    "sys.setprofile": "a profile function (it would replace the grader's ban hook)",
    "sys.settrace": "a trace function",
    "subprocess.Popen": "starting programs",
    "os.system": "starting programs",
    "os.exec": "starting programs",
    "os.posix_spawn": "starting programs",
    "os.spawn": "starting programs",
    "pty.spawn": "starting programs",
    "sys.remote_exec": "starting programs",
}


# ----------------------------------------------------------------------------------------------------------------
# Fingerprints
# ----------------------------------------------------------------------------------------------------------------


import dis as _dis

_CONST_OPS = frozenset(_dis.hasconst)
_NAME_OPS = frozenset(_dis.hasname)
_EXTENDED = _dis.opmap["EXTENDED_ARG"]


def fingerprint(code: types.CodeType, _type=type, _code=types.CodeType, _tuple=tuple, _repr=repr, _len=len,
                _consts=_CONST_OPS, _names=_NAME_OPS, _extended=_EXTENDED) -> tuple:
    """What a code object computes, as a hashable value: its bytecode and the constants and names that bytecode
    loads (nested code objects by their own fingerprints), its argument counts and flags – not its file, name, line
    numbers, local variable names, docstring or constants and names it never loads. A function rebuilt with
    ``code.replace(co_firstlineno=…)``, with an extra unused constant, or compiled again from the same source
    elsewhere has the same fingerprint.

    >>> def f(x): return x + 1
    >>> g = f.__code__.replace(co_firstlineno=99, co_filename="elsewhere.py", co_name="g",
    ...                        co_consts=f.__code__.co_consts + ("unused",))
    >>> fingerprint(g) == fingerprint(f.__code__)
    True
    """
    parts = []
    stack = [code]
    while stack:
        current = stack.pop()
        raw, consts, names = current.co_code, current.co_consts, current.co_names
        loaded = []
        argument = 0
        for offset in range(0, _len(raw), 2):
            op = raw[offset]
            argument = argument | raw[offset + 1]
            if op == _extended:
                argument = argument << 8
                continue
            if op in _consts and argument < _len(consts):
                const = consts[argument]
                if _type(const) is _code:
                    stack.append(const)
                    loaded.append("<code>")
                else:
                    loaded.append((_type(const).__name__, _repr(const)))
            elif op in _names:
                index = argument >> 1 if op == 116 else argument  # LOAD_GLOBAL's low bit pushes NULL
                loaded.append(names[index] if index < _len(names) else "?")
            argument = 0
        parts.append((raw, _tuple(loaded), current.co_argcount, current.co_posonlyargcount,
                      current.co_kwonlyargcount, current.co_flags))
    return _tuple(parts)


def _codes_of(obj: Any) -> Iterable[types.CodeType]:
    """The code objects that running ``obj`` executes: a function's (under its decorators), a class's own methods'."""
    import inspect

    members = [v for v in vars(obj).values()] if isinstance(obj, type) else [obj]
    for member in members:
        member = getattr(member, "__func__", member)
        if isinstance(member, property):
            member = member.fget
        try:
            member = inspect.unwrap(member)
        except ValueError:
            continue
        code = getattr(member, "__code__", None)
        if isinstance(code, types.CodeType):
            yield code


# Banned in every graded call, whatever the exercise: ways to run a function's computation without running its code
# (TorchDynamo's frame evaluation, TorchScript, code that torch.fx / make_fx / export generated from a trace).
DYNAMO = "torch.compile (TorchDynamo) in a graded call"  # tripped when TorchDynamo's frame hook is switched on
TRACED_CODE_PREFIX = "<eval_with_key>"  # the file name torch.fx gives the code it generates


class Plan:
    """What arming for one exercise bans: Python code by fingerprint, builtins by name, ATen operators by
    name (``aten::grid_sampler_2d``), each with the forbidden name it came from."""

    def __init__(self, codes: dict[tuple, str], bytecodes: frozenset, builtins_: dict[str, str],
                 operators: dict[str, str], no_grad: bool = False) -> None:
        self.codes, self.bytecodes, self.builtins, self.operators = codes, bytecodes, builtins_, operators
        self.no_grad = no_grad


def _aten_overloads(packet: Any) -> list[str]:
    """``aten::name`` and ``aten::name.overload`` for every overload of an ``OpOverloadPacket``."""
    names = []
    for overload in packet.overloads():
        names.append(packet._qualified_op_name + ("" if overload == "default" else f".{overload}"))
    return names




def _ops_matching(word: str, excluding: tuple[str, ...] = ("convert",)) -> list[str]:
    """Every registered operator (any namespace: aten, mkldnn, quantized, onednn …) whose name contains ``word``."""
    import torch

    found = []
    for qualified in torch._C._dispatch_get_all_op_names():
        name = qualified.split("::", 1)[-1].split(".", 1)[0]
        if word in name and not any(x in name for x in excluding):
            found.append(qualified)
    return sorted(found)


def plan_for(names: Iterable[str]) -> Plan:
    """Resolve forbidden dotted names (``Check.forbidden``) into a :class:`Plan`. Runs before any learner code."""
    import torch

    from ..checks.shortcuts import resolve

    codes: dict[tuple, str] = {}
    builtins_: dict[str, str] = {}
    operators: dict[str, str] = {}
    no_grad = False
    for name in names:
        if name.startswith(OPS_MATCHING):
            for op in _ops_matching(name[len(OPS_MATCHING):]):
                operators.setdefault(op, f"the operator {op}")
            continue
        if name == "torch.autograd.grad":
            no_grad = True  # a gradient derived by hand: autograd is off while the function runs
        try:
            obj = resolve(name)
        except Exception:  # noqa: BLE001 – not importable here (torchvision is optional)
            continue
        if isinstance(obj, torch._ops.OpOverloadPacket):
            for op in _aten_overloads(obj):
                operators.setdefault(op, name)
            continue
        if isinstance(obj, (types.BuiltinFunctionType, types.BuiltinMethodType, types.MethodDescriptorType)):
            builtins_.setdefault(obj.__name__, name)  # by name: bound, unbound or re-fetched, it is the same call
        for code in _codes_of(obj):
            codes.setdefault(fingerprint(code), name)
    return Plan(codes, frozenset(part[0][0] for part in codes), builtins_, operators, no_grad)


def trusted_code_ids() -> frozenset[int]:
    """The ids of every code object that exists now – before any learner code has run – and of the code nested in
    them. They stay alive (module functions), so an id here is never a learner's code."""
    seen: set[int] = set()
    stack: list[types.CodeType] = []
    frame = sys._getframe()
    while frame is not None:  # module code running now (the server's own) is in no function
        stack.append(frame.f_code)
        frame = frame.f_back
    for obj in gc.get_objects():
        if type(obj) is types.FunctionType:
            stack.append(obj.__code__)
        elif type(obj) is types.CodeType:
            stack.append(obj)
    keep: list[types.CodeType] = []
    while stack:
        code = stack.pop()
        if id(code) in seen:
            continue
        seen.add(id(code))
        keep.append(code)
        stack.extend(c for c in code.co_consts if type(c) is types.CodeType)
    _KEEP_ALIVE.extend(keep)
    return frozenset(seen)


_KEEP_ALIVE: list[Any] = []  # trusted code objects (so their ids are never reused), stand-in codes


# ----------------------------------------------------------------------------------------------------------------
# Stand-ins: code whose target is a constant
# ----------------------------------------------------------------------------------------------------------------


def _stand_in_template(*args, **kwargs):  # the constants below are replaced per reference (make_stand_in)
    for value in args:
        if _KIND_OF(value) not in _ALLOWED:
            raise _TYPE_ERROR("a stand-in for another exercise takes tensors, arrays, numbers, strings and None")
    for value in kwargs.values():
        if _KIND_OF(value) not in _ALLOWED:
            raise _TYPE_ERROR("a stand-in for another exercise takes tensors, arrays, numbers, strings and None")
    with _NO_TORCH_FUNCTION():
        with _NO_TORCH_DISPATCH():
            return _REFERENCE(*args, **kwargs)


def make_stand_in(reference: Any, name: str) -> types.FunctionType:
    """A function named ``name`` that calls ``reference`` with every name it uses held as a code constant (nothing
    to patch): plain arguments only, torch's function and dispatch overrides off. Made before any learner code."""
    import numpy as np
    import torch

    allowed = frozenset({torch.Tensor, np.ndarray, int, float, bool, str, type(None), complex, np.float64,
                         np.float32, np.int64, np.int32, tuple, list})
    replacements = {"_KIND_OF": type, "_ALLOWED": allowed, "_TYPE_ERROR": TypeError,
                    "_NO_TORCH_FUNCTION": torch._C.DisableTorchFunction,
                    "_NO_TORCH_DISPATCH": torch._C._DisableTorchDispatch, "_REFERENCE": reference}
    template = _stand_in_template.__code__
    names = template.co_names
    # every global the template loads becomes a constant: LOAD_GLOBAL i -> LOAD_CONST j
    consts = list(template.co_consts)
    index = {}
    for name_ in replacements:
        index[name_] = len(consts)
        consts.append(replacements[name_])
    code = bytearray(template.co_code)
    if sys.version_info < (3, 11):
        return _stand_in_310(template, code, consts, index, replacements, name)
    import dis

    load_global, load_const, nop = dis.opmap["LOAD_GLOBAL"], dis.opmap["LOAD_CONST"], dis.opmap["NOP"]
    push_null = dis.opmap["PUSH_NULL"]
    cache = dis._inline_cache_entries[load_global]
    for offset in range(0, len(code), 2):
        if code[offset] != load_global:
            continue
        arg = code[offset + 1]
        global_name = names[arg >> 1]
        if global_name not in replacements:
            raise AssertionError(f"stand-in template loads {global_name}")
        if index[global_name] > 255:
            raise AssertionError("too many constants")
        # LOAD_GLOBAL with the low bit set also pushes NULL before the value (a call follows); keep that order
        if arg & 1:
            # room: LOAD_GLOBAL occupies 2 + 2*cache bytes; write PUSH_NULL, LOAD_CONST, then NOPs
            code[offset], code[offset + 1] = push_null, 0
            code[offset + 2], code[offset + 3] = load_const, index[global_name]
            for extra in range(offset + 4, offset + 2 + 2 * cache, 2):
                code[extra], code[extra + 1] = nop, 0
        else:
            code[offset], code[offset + 1] = load_const, index[global_name]
            for extra in range(offset + 2, offset + 2 + 2 * cache, 2):
                code[extra], code[extra + 1] = nop, 0
    stand_in_code = template.replace(co_code=bytes(code), co_consts=tuple(consts), co_name=name, co_qualname=name)
    return _stand_in_function(stand_in_code, name)


def _stand_in_310(template: types.CodeType, code: bytearray, consts: list, index: dict[str, int],
                  replacements: dict[str, Any], name: str) -> types.FunctionType:
    """:func:`make_stand_in` on Python 3.10 (Gradescope's default image): there ``LOAD_GLOBAL i`` takes two bytes,
    as ``LOAD_CONST j`` does, with no inline caches and no NULL to push, and code objects have no qualname."""
    import dis

    load_global, load_const, extended = dis.opmap["LOAD_GLOBAL"], dis.opmap["LOAD_CONST"], dis.EXTENDED_ARG
    for offset in range(0, len(code), 2):
        if code[offset] == extended:
            raise AssertionError("stand-in template uses EXTENDED_ARG")
        if code[offset] != load_global:
            continue
        global_name = template.co_names[code[offset + 1]]
        if global_name not in replacements:
            raise AssertionError(f"stand-in template loads {global_name}")
        if index[global_name] > 255:
            raise AssertionError("too many constants")
        code[offset], code[offset + 1] = load_const, index[global_name]
    return _stand_in_function(template.replace(co_code=bytes(code), co_consts=tuple(consts), co_name=name), name)


def _stand_in_function(stand_in_code: types.CodeType, name: str) -> types.FunctionType:
    """The stand-in from its code: no globals but the builtins, marked as the grader's."""
    _KEEP_ALIVE.append(stand_in_code)
    function = types.FunctionType(stand_in_code, {"__builtins__": builtins}, name)
    function.__stn_course_stand_in__ = True
    return function


# ----------------------------------------------------------------------------------------------------------------
# The harness's own gradient computation (a root marker: allowed to reach the autograd engine)
# ----------------------------------------------------------------------------------------------------------------


def harness_backward(outputs: tuple, grad_outputs: tuple, inputs: tuple) -> tuple:
    """``torch.autograd.grad(outputs, inputs, grad_outputs, allow_unused=True)`` through the engine directly, so
    that the harness computes the learner's gradients without calling a banned Python function."""
    from torch.autograd import Variable

    return Variable._execution_engine.run_backward(outputs, grad_outputs, False, False, inputs, True, False)


# ----------------------------------------------------------------------------------------------------------------
# The vault
# ----------------------------------------------------------------------------------------------------------------


def install(channel_fd: int, nonce: str, plans: dict[str, Plan], trusted: frozenset[int],
            stand_ins: dict[int, frozenset[tuple]], root_markers: frozenset[int], protected: Iterable[Any]) -> None:
    """Register the vault (an audit hook) in this process: from now on, and in every process forked from it.

    ``channel_fd`` is a socket whose other end only the grader reads; every report starts with ``nonce``.
    ``plans`` are the bans per check id; ``trusted`` the ids of code that existed before learner code;
    ``stand_ins`` maps a stand-in code id to the banned fingerprints its reference may call; ``root_markers`` are
    harness code ids allowed to reach banned builtins when no learner frame is above them; ``protected`` are
    functions whose defaults may never change.
    """
    import _thread
    import signal

    import torch

    arm_code, start_code, bootstrap_code = arm.__code__, start_new_thread.__code__, _bootstrap.__code__
    mapping = types.MappingProxyType
    stand_ins = mapping(dict(stand_ins))
    channel_stat = os.fstat(channel_fd)
    state: dict[str, Any] = {"armed": None, "profile": None, "installing": 0, "handles": []}
    protected_ids = frozenset(id(f) for f in protected)
    real_setprofile = sys.setprofile
    real_start = _thread.start_new_thread
    getframe = sys._getframe
    write, fstat, kill, getpid, listdir = os.write, os.fstat, os.kill, os.getpid, os.listdir
    dispatch_library = torch._C._dispatch_library
    has_kernel = torch._C._dispatch_has_kernel_for_dispatch_key
    encode = str.encode

    def report(kind: str, detail: str) -> None:
        """One line to the grader; a process whose channel was tampered with is ended instead."""
        try:
            current = fstat(channel_fd)
            if (current.st_ino, current.st_dev) != (channel_stat.st_ino, channel_stat.st_dev):
                raise OSError("the channel was replaced")
            write(channel_fd, encode(f"{nonce} {kind} {detail[:200]}\n", "utf-8", "replace"))
        except OSError:
            kill(getpid(), signal.SIGKILL)

    def trip(name: str) -> None:
        report("banned", name)
        kill(getpid(), signal.SIGKILL)

    script_types = frozenset({torch._C.ScriptFunction, torch._C.ScriptMethod})
    set_grad_enabled, is_grad_enabled = torch._C._set_grad_enabled, torch._C.is_grad_enabled
    dynamo_callback = torch._C._dynamo.eval_frame.get_eval_frame_callback

    def make_profile(plan: Plan):
        codes, bytecodes = mapping(dict(plan.codes)), plan.bytecodes
        builtins_ = mapping(dict(plan.builtins))
        stand_in_codes = stand_ins

        def profile(frame, event, arg, _codes=codes, _bytecodes=bytecodes, _builtins=builtins_,
                    _trusted=trusted, _stand_ins=stand_in_codes, _roots=root_markers, _fingerprint=fingerprint,
                    _id=id, _type=type, _getattr=getattr, _audit=sys.audit, _tag=TAG, _script=script_types,
                    _traced=TRACED_CODE_PREFIX, _traced_len=len(TRACED_CODE_PREFIX), _no_grad=plan.no_grad,
                    _grad_on=is_grad_enabled, _dynamo=dynamo_callback, _dynamo_name=DYNAMO):
            if event == "c_return":
                name = _getattr(arg, "__name__", None)
                if name == "set_eval_frame":  # switching TorchDynamo off (torch's own @disable) is fine; on is not
                    if _dynamo() is not None:
                        _audit(_tag, "trip", _dynamo_name)
                elif name == "_set_grad_enabled" and _no_grad and _grad_on():  # off where it is derived by hand
                    _audit(_tag, "trip", "switching autograd on (this exercise derives the gradient by hand)")
                return
            if event == "call":
                code = frame.f_code
                if code.co_code not in _bytecodes:
                    if code.co_filename[:_traced_len] == _traced:
                        _audit(_tag, "trip", "torch.fx code generated from a trace, in a graded call")
                    return
                key = _fingerprint(code)
                name = _codes.get(key)
                if name is None:
                    return
                walker = frame.f_back
            elif event == "c_call":
                if _type(arg) in _script:
                    _audit(_tag, "trip", "TorchScript in a graded call")
                name = _builtins.get(_getattr(arg, "__name__", None))
                if name is None:
                    return
                key = None
                walker = frame
            else:
                return
            while walker is not None:  # allowed only from inside a stand-in or the harness, through trusted code
                code_id = _id(walker.f_code)
                allowed = _stand_ins.get(code_id)
                if allowed is not None:  # inside a stand-in: its reference's builtins, and the functions it uses
                    if key is None or key in allowed:
                        return
                    break
                if code_id in _roots:
                    above = walker.f_back
                    while above is not None and _id(above.f_code) in _trusted:
                        above = above.f_back
                    if above is None:
                        return
                    break
                if code_id not in _trusted:
                    break
                walker = walker.f_back
            _audit(_tag, "trip", name)

        protected_now.add(id(profile))
        return profile

    protected_now: set[int] = set(protected_ids)
    profile_codes: set[int] = set()

    def kernel_for(name: str):
        def banned_kernel(*args, _audit=sys.audit, _tag=TAG, _name=name, **kwargs):
            _audit(_tag, "trip", _name)
            raise RuntimeError(f"{_name} is banned in this exercise")

        profile_codes.add(id(banned_kernel.__code__))
        protected_now.add(id(banned_kernel))
        return banned_kernel

    def replace_kernels(operators: dict[str, str]) -> None:
        libraries: dict[str, Any] = {}
        for op, name in sorted(operators.items()):
            namespace, _, op_name = op.partition("::")
            for key in ("CPU", "CUDA", "QuantizedCPU", "MkldnnCPU", "CompositeExplicitAutograd",
                        "CompositeImplicitAutograd"):
                try:
                    if has_kernel(op, key):
                        if namespace not in libraries:
                            libraries[namespace] = dispatch_library("IMPL", namespace, "", "stn-course guard", 0)
                        libraries[namespace].impl(op_name, key, kernel_for(name), False)
                except RuntimeError:
                    continue
        state["handles"].extend(libraries.values())  # never released: they last as long as the process

    def threads_here() -> int:
        try:
            return len(listdir("/proc/self/task"))
        except OSError:
            return -1

    _on_trace: list = [None]

    def vault(event: str, args: tuple) -> None:
        if event == "sys._getframe" or event == "object.__getattr__" or event == "import" or event == "open" \
                and not (type(args[0]) is str and args[0].endswith("/mem")):
            return
        if event == TAG:
            op = args[0] if args else None
            caller = getframe(1).f_code
            if op == "trip":
                if id(caller) in profile_codes and type(args[1]) is str:
                    trip(args[1])
                return
            if op == "trace":
                if id(caller) in profile_codes and type(args[1]) is str:
                    _on_trace[0](args[1])
                return
            if op == "arm" and caller is arm_code and type(args[1]) is str and type(args[2]) is list:
                check_id, box = args[1], args[2]
                if state["armed"] is not None:  # (the cells' hook is replaced; a second arming is tampering)
                    report("tamper", f"armed twice ({state['armed']}, then {check_id})")
                    kill(getpid(), signal.SIGKILL)
                threads = threads_here()
                if threads != 1:
                    report("tamper", f"{threads} threads were running before the graded call")
                    kill(getpid(), signal.SIGKILL)
                plan = plans.get(check_id, Plan({}, frozenset(), {}, {}))
                profile = make_profile(plan)
                profile_codes.add(id(profile.__code__))
                state["profile"], state["armed"], state["no_grad"] = profile, check_id, plan.no_grad
                if plan.operators:
                    replace_kernels(plan.operators)
                if plan.no_grad:
                    set_grad_enabled(False)
                state["installing"] += 1
                try:
                    real_setprofile(profile)
                finally:
                    state["installing"] -= 1
                report("armed", f"{check_id} {getpid()}")
                box.append(True)
                return
            if op == "start" and caller is start_code and type(args[2]) is tuple and type(args[3]) is dict \
                    and type(args[4]) is list:
                function, arguments, keywords, box = args[1], args[2], args[3], args[4]
                box.append(real_start(_bootstrap, (function, arguments, keywords)))
                return
            if op == "thread" and caller is bootstrap_code:
                if state.get("no_grad"):
                    set_grad_enabled(False)  # a new thread starts with autograd on
                if state["profile"] is not None:
                    state["installing"] += 1
                    try:
                        real_setprofile(state["profile"])
                    finally:
                        state["installing"] -= 1
                return
            return
        if event.startswith(_REFUSED_PREFIXES) or event in _REFUSED:
            if event in ("sys.setprofile", "sys.settrace") and state["installing"]:
                return
            what = _REFUSED.get(event, "ctypes")
            report("refused", event)
            raise PermissionError(f"{event}: the grader does not allow {what} while grading")
        if event == "open":  # /proc/<pid>/mem: another way into the process's memory
            report("refused", "open /proc/*/mem")
            raise PermissionError("reading a process's memory is not allowed while grading")
        if event == "object.__setattr__" and len(args) >= 2:
            target, attribute = args[0], args[1]
            if attribute == "__code__" or (attribute in ("__defaults__", "__kwdefaults__", "__closure__")
                                           and id(target) in protected_now):
                report("refused", f"setting {attribute}")
                raise PermissionError(f"setting a function's {attribute} is not allowed while grading")

    def make_cell_profile():
        """The hook while the cells run: the package's banned functions may run (demos do), but not under a tracer –
        a trace taken here (``torch.jit.trace``, ``make_fx``, ``torch.fx``) would replay their computation in a
        graded call without their code. A traced banned function ends the cell's process (the cell is dropped)."""
        everything: dict = {}
        for plan in plans.values():
            everything.update(plan.codes)
        codes = mapping(everything)
        bytecodes = frozenset(part[0][0] for part in everything)
        tracing_state = torch._C._get_tracing_state
        dispatch_modes = torch._C._len_torch_dispatch_stack
        suspicious = frozenset({"Proxy", "Attribute", "FakeTensor", "FunctionalTensor", "ProxyTensor"})

        def cell_profile(frame, event, arg, _codes=codes, _bytecodes=bytecodes, _fingerprint=fingerprint,
                         _tracing=tracing_state, _modes=dispatch_modes, _suspicious=suspicious, _type=type,
                         _audit=sys.audit, _tag=TAG):
            if event != "call":
                return
            code = frame.f_code
            if code.co_code not in _bytecodes:
                return
            name = _codes.get(_fingerprint(code))
            if name is None:
                return
            traced = _tracing() is not None or _modes() > 0
            if not traced:
                for value in frame.f_locals.values():
                    if _type(value).__name__ in _suspicious:
                        traced = True
                        break
            if traced:
                _audit(_tag, "trace", name)

        profile_codes.add(id(cell_profile.__code__))
        protected_now.add(id(cell_profile))
        return cell_profile

    def on_trace(name: str) -> None:
        report("refused", f"tracing {name}")
        kill(getpid(), signal.SIGKILL)

    _on_trace[0] = on_trace
    sys.addaudithook(vault)
    cell_profile = make_cell_profile()
    state["profile"] = cell_profile
    state["installing"] += 1
    try:
        real_setprofile(cell_profile)
    finally:
        state["installing"] -= 1
    # everything below runs once the vault is in place
    _thread.start_new_thread = start_new_thread
    _thread.start_new = start_new_thread
    import threading

    threading._start_new_thread = start_new_thread


def arm(check_id: str, _audit=sys.audit, _tag=TAG) -> bool:
    """Arm this process for ``check_id`` (once): the vault installs the bans and reports it to the grader."""
    box: list = []
    _audit(_tag, "arm", check_id, box)
    return bool(box)


def _bootstrap(function: Any, arguments: tuple, keywords: dict, _audit=sys.audit, _tag=TAG) -> Any:
    """The first frame of every thread started while grading: the ban hook goes in first."""
    _audit(_tag, "thread")
    return function(*arguments, **keywords)


def start_new_thread(function: Any, args: tuple, kwargs: dict | None = None, _audit=sys.audit, _tag=TAG) -> int:
    """``_thread.start_new_thread``, through the vault (the new thread gets the ban hook)."""
    box: list = []
    _audit(_tag, "start", function, tuple(args), dict(kwargs or {}), box)
    if not box:
        raise RuntimeError("cannot start a thread: the grader's guard is not installed")
    return box[0]


