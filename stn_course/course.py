"""The course's lessons, discovered from their sources: one lesson, one place (every lesson).

A lesson is its percent-format source ``solutions/src/NN_slug.py``. What the package needs to know about it is
declared once, in a YAML header at the top of that file::

    # ---
    # lesson:
    #   checks: stn_course.checks.lesson02       # the module that registers its exercises' checks
    #   figures: stn_course.plotting.lesson02    # its figures (re-exported by stn_course.plotting)
    #   explorers: stn_course.widgets.lesson02   # its explorers (re-exported by stn_course.widgets)
    #   budget_s: 120                            # the FAST run's promise: the whole notebook, top to bottom
    #   cell_budget_s: 60                        # ... and its longest cell (default 120 or budget_s); tests assert both
    #   requires: [triton]                       # modules beyond the package's own dependencies (lesson 7)
    #   exercises:                               # each exercise's check: what it is called, worth, hints
    #     02.affine_grid:
    #       title: affine sampling grid from scratch
    #       points: 2
    #       hint: Where do the output's pixel centres sit?
    #       recipe: …
    #   dashboard:                               # its page in `stn-course explore` (Voilà)
    #     intro: What the page shows.
    #     code: |
    #       widgets.sampling_explorer()
    #   claims:                                  # every number its prose states, tied to what backs it
    #     - {text: "zoom ≈ 3", why: "an Explore instruction: the value to set the slider to"}
    # ---

Everything else is read from the lesson itself: the number and slug from the file name, the title from its first
heading (``# Lesson 2 – Sampling grids …``), and the "Try this" list from the bullets of its ``## Explore``
section – the dashboards show the same bullets, and ``tests/test_try_this.py`` drives each one.

:func:`lessons` is the registry everything iterates over: the checks (``stn-course checks``, the grader),
``stn_course.plotting`` and ``stn_course.widgets``, the dashboards (:mod:`stn_course.explore`), and the tests. No
other list of lesson numbers exists. The course folder is, in order: the ``STN_COURSE_ROOT`` environment variable
(an instructor's own course, or a test's throw-away one), the repository this package sits in, or – for an
installed package without the sources – the manifest ``stn_course/lessons.json`` that ``stn-course build`` writes
from the sources (generated; a test keeps it in sync).

>>> [lesson.number for lesson in lessons()][:3]
['01', '02', '03']
>>> get("02").checks
'stn_course.checks.lesson02'
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

__all__ = ["Lesson", "Exercise", "Dashboard", "Claim", "lessons", "get", "numbers", "course_root", "split_front_matter",
           "read_lesson", "manifest_text", "MANIFEST", "ROOT_ENV", "student_notebooks", "copy_lessons",
           "benchmark_record"]

ROOT_ENV = "STN_COURSE_ROOT"
MANIFEST = Path(__file__).with_name("lessons.json")
SOURCE_PATTERN = "[0-9][0-9]_*.py"
_FRONT_MATTER = re.compile(r"\A# ---\n(?P<body>(?:#.*\n)*?)# ---\n")
_TITLE = re.compile(r"^# # Lesson \d+ [–-] (?P<title>.+)$", re.M)
_FIELDS = {"checks", "figures", "explorers", "budget_s", "cell_budget_s", "requires", "dashboard", "claims", "exercises"}


@dataclass(frozen=True)
class Dashboard:
    """A lesson's page in ``stn-course explore``: a title, what the page shows, the lesson's "Try this" list,
    and the code Voilà runs (the page's only cell)."""
    title: str
    intro: str
    code: str
    try_this: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The page's markdown below its title."""
        if not self.try_this:
            return self.intro
        return self.intro + "\n\nTry this:\n\n" + "\n".join(f"* {item}" for item in self.try_this)


@dataclass(frozen=True)
class Claim:
    """A number a lesson's prose states, and what backs it – exactly one of:

    * ``holds`` – a Python expression, true in the namespace of the executed solution notebook;
    * ``benchmark`` – an expression over ``readme`` (the text of ``benchmarks/README.md``) that must be true;
    * ``why`` – the number is a choice made in the code or a quoted fact, not a measurement.
    """
    text: str
    holds: str = ""
    benchmark: str = ""
    why: str = ""

    def __post_init__(self) -> None:
        if sum(bool(v) for v in (self.holds, self.benchmark, self.why)) != 1:
            raise ValueError(f"claim {self.text!r}: expected exactly one of holds, benchmark, why")


@dataclass(frozen=True)
class Exercise:
    """What a lesson's header says of one exercise; its check module adds the code (reference, cases, comparison,
    bans) with :func:`stn_course.checks.catalog.exercise`. Fields left out take :class:`~stn_course.checks.Check`'s
    defaults; ``hint`` is shown at the first failure, ``recipe`` from the next one."""
    id: str
    title: str = ""
    points: float = 1.0
    hint: str = ""
    recipe: str = ""
    function: str = ""
    builds_on: tuple[str, ...] = ()
    rtol: float = 1e-5
    atol: float = 1e-5
    grad_args: tuple[int | str, ...] = ()

    @classmethod
    def declared(cls, check_id: str, fields: dict) -> "Exercise":
        unknown = set(fields) - set(cls.__dataclass_fields__) | ({"id"} & set(fields))
        if unknown:
            raise ValueError(f"exercise {check_id}: unknown field(s) {sorted(unknown)}")
        return cls(id=check_id, **{key: tuple(value) if isinstance(value, list) else value
                                   for key, value in fields.items()})

    def check_fields(self) -> dict:
        """The fields a :class:`~stn_course.checks.Check` takes from the header."""
        return {key: value for key, value in asdict(self).items() if key != "id"}


@dataclass(frozen=True)
class Lesson:
    """Everything the package knows about one lesson; built from its source by :func:`read_lesson`."""
    number: str
    slug: str
    title: str
    checks: str | None = None
    figures: str | None = None
    explorers: str | None = None
    budget_s: int = 300
    cell_budget_s: int = 120
    requires: tuple[str, ...] = ()
    dashboard: Dashboard | None = None
    try_this: tuple[str, ...] = ()
    claims: tuple[Claim, ...] = ()
    exercises: tuple[Exercise, ...] = ()
    source: Path | None = field(default=None, compare=False)
    source_sha256: str = ""

    def exercise(self, check_id: str) -> Exercise:
        """The header's declaration of exercise ``check_id``; ``KeyError`` naming the ones it declares."""
        for exercise in self.exercises:
            if exercise.id == check_id:
                return exercise
        raise KeyError(f"lesson {self.number}'s header declares no exercise {check_id!r}; it declares: "
                       f"{', '.join(e.id for e in self.exercises) or 'none'}")

    @property
    def modules(self) -> tuple[str, ...]:
        """The package modules the lesson declares (checks, figures, explorers), those it has."""
        return tuple(m for m in (self.checks, self.figures, self.explorers) if m)

    def as_json(self) -> dict:
        data = asdict(self)
        data.pop("source")
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Lesson":
        data = dict(data)
        board = data.pop("dashboard")
        return cls(**{**data, "dashboard": None if board is None else Dashboard(**{**board, "try_this": tuple(
            board["try_this"])}), "try_this": tuple(data["try_this"]),
            "claims": tuple(Claim(**c) for c in data["claims"]), "requires": tuple(data["requires"]),
            "exercises": tuple(Exercise.declared(e.pop("id"), e) for e in map(dict, data["exercises"]))})


def split_front_matter(text: str) -> tuple[dict, str]:
    """``(header, rest)``: the lesson's YAML header (``{}`` when it has none) and the source without it (and without
    the blank lines after it).

    >>> split_front_matter("# ---\\n# lesson:\\n#   budget_s: 60\\n# ---\\n\\n# %%\\nx = 1\\n")
    ({'lesson': {'budget_s': 60}}, '# %%\\nx = 1\\n')
    """
    match = _FRONT_MATTER.match(text)
    if match is None:
        return {}, text
    import yaml

    body = "\n".join(line[2:] if line.startswith("# ") else line[1:] for line in match["body"].splitlines())
    header = yaml.safe_load(body) or {}
    if not isinstance(header, dict):
        raise ValueError(f"the lesson header must be a YAML mapping, got {type(header).__name__}")
    return header, text[match.end():].lstrip("\n")


def _explore_bullets(text: str) -> tuple[str, ...]:
    """The bullets of the ``## Explore`` section's markdown (each joined into one line)."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "# ## Explore")
    except StopIteration:
        return ()
    bullets: list[str] = []
    for line in lines[start + 1:]:
        if not line.startswith("#") or line.startswith("# %%") or line.startswith("# #"):
            break
        content = line[2:] if line.startswith("# ") else line[1:]
        if content.startswith(("* ", "- ")):
            bullets.append(content[2:].strip())
        elif bullets and content.startswith("  ") and content.strip():
            bullets[-1] += " " + content.strip()
        elif bullets and content.strip():
            break
    return tuple(item.rstrip(";.") for item in bullets)


def read_lesson(path: Path) -> Lesson:
    """The :class:`Lesson` declared by the source ``path`` (``NN_slug.py``)."""
    path = Path(path)
    text = path.read_text()
    number, slug = path.name[:2], path.stem
    header, rest = split_front_matter(text)
    declared = header.get("lesson") or {}
    unknown = set(declared) - _FIELDS
    if unknown:
        raise ValueError(f"{path.name}: unknown lesson field(s) {sorted(unknown)}; expected {sorted(_FIELDS)}")
    title_match = _TITLE.search(rest)
    title = title_match["title"].strip() if title_match else slug[3:].replace("_", " ")
    try_this = _explore_bullets(rest)
    board = declared.get("dashboard")
    dashboard = None
    if board is not None:
        if not isinstance(board, dict) or "code" not in board:
            raise ValueError(f"{path.name}: dashboard: expected a mapping with 'code' (and 'intro', 'title')")
        dashboard = Dashboard(title=board.get("title") or f"Lesson {int(number)} – {title}",
                              intro=str(board.get("intro", "")).strip(), code=str(board["code"]).rstrip() + "\n",
                              try_this=try_this)
    claims = tuple(Claim(**entry) for entry in declared.get("claims") or ())
    exercises = tuple(Exercise.declared(check_id, fields or {})
                      for check_id, fields in (declared.get("exercises") or {}).items())
    strangers = [e.id for e in exercises if not e.id.startswith(number + ".")]
    if strangers:
        raise ValueError(f"{path.name}: exercise ids must start with the lesson's number {number}.: {strangers}")
    requires = declared.get("requires") or []
    if not isinstance(requires, list) or not all(isinstance(name, str) for name in requires):
        raise ValueError(f"{path.name}: requires: expected a list of module names, got {requires!r}")
    budget = declared.get("budget_s", 300)
    cell_budget = declared.get("cell_budget_s", min(120, budget) if isinstance(budget, int) else 120)
    for name, value in (("budget_s", budget), ("cell_budget_s", cell_budget)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{path.name}: {name}: expected a positive whole number of seconds, got {value!r}")
    if cell_budget > budget:
        raise ValueError(f"{path.name}: cell_budget_s ({cell_budget}) is more than the whole lesson's budget_s ({budget})")
    return Lesson(number=number, slug=slug, title=title, checks=declared.get("checks"),
                  figures=declared.get("figures"), explorers=declared.get("explorers"), budget_s=budget,
                  cell_budget_s=cell_budget, requires=tuple(requires),
                  dashboard=dashboard, try_this=try_this, claims=claims, exercises=exercises, source=path,
                  source_sha256=hashlib.sha256(text.encode()).hexdigest())


def course_root() -> Path | None:
    """The course folder whose ``solutions/src`` holds the lessons, or ``None`` (use the bundled manifest)."""
    env = os.environ.get(ROOT_ENV)
    if env:
        root = Path(env)
        if not (root / "solutions" / "src").is_dir():
            raise FileNotFoundError(f"{ROOT_ENV}={env}: expected a course folder with solutions/src/NN_slug.py")
        return root
    repo = Path(__file__).resolve().parents[1]
    return repo if (repo / "solutions" / "src").is_dir() else None


@functools.lru_cache(maxsize=8)
def _lessons(root: Path | None) -> tuple[Lesson, ...]:
    if root is None:
        if not MANIFEST.exists():
            return ()
        return tuple(Lesson.from_json(item) for item in json.loads(MANIFEST.read_text())["lessons"])
    return tuple(read_lesson(path) for path in sorted((root / "solutions" / "src").glob(SOURCE_PATTERN)))


def lessons() -> list[Lesson]:
    """Every lesson of the course, in order."""
    return list(_lessons(course_root()))


def numbers() -> list[str]:
    """The lesson numbers, ``["01", "02", …]``."""
    return [lesson.number for lesson in lessons()]


def get(number: str) -> Lesson:
    """The lesson numbered ``number`` (``"02"``); ``KeyError`` naming the lessons there are."""
    for lesson in lessons():
        if lesson.number == number:
            return lesson
    raise KeyError(f"no lesson {number!r}; the course has: {', '.join(numbers()) or 'none'}")


def manifest_text(source_dir: Path) -> str:
    """The manifest (``stn_course/lessons.json``) of the sources in ``source_dir``: generated, do not edit.

    It also carries the course's benchmark records (``benchmarks/*.json`` beside ``solutions/``), which lessons
    read through :func:`benchmark_record` – an installed package has no ``benchmarks`` folder.
    """
    found = [read_lesson(path).as_json() for path in sorted(Path(source_dir).glob(SOURCE_PATTERN))]
    records = {path.stem: json.loads(path.read_text())
               for path in sorted((Path(source_dir).resolve().parents[1] / "benchmarks").glob("*.json"))}
    return json.dumps({"generated": "by `stn-course build` from solutions/src/NN_slug.py – do not edit",
                       "lessons": found, "benchmark_records": records}, indent=1, ensure_ascii=False) + "\n"


def benchmark_record(name: str) -> dict:
    """A benchmark's stored results, ``benchmarks/NAME.json`` – from the course folder, or, for an installed
    package, from the copy that ``stn-course build`` puts in the manifest. ``KeyError`` names the records there are.

    >>> sorted(benchmark_record("lr_sweep"))[:2]
    ['batch_norm', 'command']
    """
    root = course_root()
    if root is not None and (root / "benchmarks" / f"{name}.json").is_file():
        return json.loads((root / "benchmarks" / f"{name}.json").read_text())
    records = json.loads(MANIFEST.read_text()).get("benchmark_records", {}) if MANIFEST.exists() else {}
    if name not in records:
        raise KeyError(f"no benchmark record {name!r}; the course has: {', '.join(sorted(records)) or 'none'}")
    return records[name]


LESSONS_PACKAGE = "stn_course.lessons_data"  # the student notebooks inside an installed package (pyproject.toml)


def student_notebooks() -> list:
    """The student lessons ``NN_slug.ipynb``, in order: the clone's ``lessons/`` folder, or – for an installed
    package – the copies shipped in it (``stn_course.lessons_data``, which pyproject.toml maps to ``lessons/``).

    Returns paths or :mod:`importlib.resources` traversables (both have ``.name`` and ``.read_bytes()``).
    """
    root = course_root()
    if root is not None and (root / "lessons").is_dir():
        return sorted((root / "lessons").glob("[0-9][0-9]_*.ipynb"))
    try:
        shipped = resources.files(LESSONS_PACKAGE)
    except ModuleNotFoundError:
        return []
    return sorted((item for item in shipped.iterdir() if re.fullmatch(r"\d\d_.*\.ipynb", item.name)),
                  key=lambda item: item.name)


def copy_lessons(destination: Path, overwrite: bool = False) -> list[Path]:
    """Copy the student lessons into ``destination`` (created if missing) and return the files written.

    A lesson already there is a learner's work: it is kept, and ``FileExistsError`` names it, unless ``overwrite``.
    """
    notebooks = student_notebooks()
    if not notebooks:
        raise FileNotFoundError("no student lessons found: neither a course folder with lessons/ nor the copies "
                                f"an installed package ships ({LESSONS_PACKAGE})")
    destination = Path(destination)
    existing = [n.name for n in notebooks if (destination / n.name).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{destination} already has {', '.join(existing)}: your work is kept; "
                              "copy into another folder, or pass overwrite=True (--force) to replace them")
    destination.mkdir(parents=True, exist_ok=True)
    written = []
    for notebook in notebooks:
        target = destination / notebook.name
        target.write_bytes(notebook.read_bytes())  # a path in a clone, a traversable in an installed package
        written.append(target)
    return written
