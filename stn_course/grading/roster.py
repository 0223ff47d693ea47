"""A class roster: who the students are, and which submission is whose (classroom grading, ``--roster FILE``).

Three CSV formats, told apart by their header (case and spacing of the column names do not matter):

* **Gradescope**'s roster export: ``First Name``, ``Last Name`` (or ``Name``/``Full Name``), ``SID``, ``Email``
  and usually ``Role`` (rows whose role is not a student's are skipped);
* **GitHub Classroom**'s roster export: ``identifier``, ``github_username``, ``github_id``, ``name``;
* a **plain** CSV: ``student_id``, ``email``, ``name`` and an optional ``aliases`` (names separated by ``;``).

A submission (its file or folder name, as :mod:`~stn_course.grading.submissions` names it) matches a student by
their id, e-mail, the e-mail's local part, GitHub username (also as the ``-username`` suffix of a GitHub Classroom
repository folder), an alias, or their name normalised (case, accents, separators and word order ignored). A key
shared by two students matches neither.
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Student", "Roster", "RosterError", "load_roster", "parse_roster", "normalise", "FORMATS"]

#: Each format's required columns (normalised: lower case, spaces as underscores), as named in errors.
FORMATS = {
    "gradescope": ("sid", "email", "first_name + last_name, or name"),
    "github-classroom": ("identifier", "github_username", "github_id", "name"),
    "plain": ("student_id", "email", "name"),
}
_STUDENT_ROLES = {"", "student", "students"}


class RosterError(ValueError):
    """A roster file that cannot be read: the message names what was expected."""


@dataclass(frozen=True)
class Student:
    """One student of the roster; ``student_id`` is the id a gradebook upload keys on."""

    student_id: str
    email: str = ""
    name: str = ""
    github: str = ""
    aliases: tuple[str, ...] = field(default=())

    def as_json(self) -> dict:
        return {"student_id": self.student_id, "email": self.email, "name": self.name, "github": self.github,
                "aliases": list(self.aliases)}

    @classmethod
    def from_json(cls, data: dict) -> "Student":
        return cls(str(data.get("student_id", "")), str(data.get("email", "")), str(data.get("name", "")),
                   str(data.get("github", "")), tuple(str(a) for a in data.get("aliases", [])))


def normalise(text: str) -> str:
    """``text`` as a match key: accents dropped, case folded, runs of anything but letters and digits removed."""
    plain = unicodedata.normalize("NFKD", str(text))
    plain = "".join(c for c in plain if not unicodedata.combining(c)).casefold()
    return re.sub(r"[^0-9a-z]+", "", plain)


def _name_keys(name: str) -> set[str]:
    """A name's keys: its words joined in order and in reverse ("Ada Lovelace" and "Lovelace, Ada")."""
    words = [normalise(w) for w in re.split(r"[\s,_.\-]+", name) if normalise(w)]
    return {"".join(words), "".join(reversed(words))} - {""} if words else set()


@dataclass
class Roster:
    """The students of a class and an index from match keys to them."""

    students: list[Student]
    format: str = "plain"
    source: str = ""
    _index: dict[str, Student | None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for student in self.students:
            for key in self._keys(student):
                self._index[key] = student if self._index.get(key, student) == student else None  # None: ambiguous
        self._github = {normalise(s.github): s for s in self.students if s.github}

    @staticmethod
    def _keys(student: Student) -> set[str]:
        keys = {normalise(student.student_id), normalise(student.email), normalise(student.github)}
        if "@" in student.email:
            keys.add(normalise(student.email.split("@", 1)[0]))
        keys |= {normalise(a) for a in student.aliases} | _name_keys(student.name)
        return keys - {""}

    def match(self, submitted_as: str) -> Student | None:
        """The student a submission named ``submitted_as`` (a file stem or folder name) belongs to, or None."""
        key = normalise(submitted_as)
        if key in self._index:
            return self._index[key]
        for key in _name_keys(submitted_as):
            if self._index.get(key) is not None:
                return self._index[key]
        if "-" in submitted_as:  # GitHub Classroom clones: <assignment>-<github username>
            tails = [normalise(submitted_as.split("-", i)[-1]) for i in range(1, submitted_as.count("-") + 1)]
            for tail in tails:  # the longest tail that is a username
                if tail in self._github:
                    return self._github[tail]
        return None

    def as_json(self) -> dict:
        return {"format": self.format, "source": self.source, "students": [s.as_json() for s in self.students]}

    @classmethod
    def from_json(cls, data: dict) -> "Roster":
        return cls([Student.from_json(s) for s in data.get("students", [])], str(data.get("format", "plain")),
                   str(data.get("source", "")))


def _column(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lstrip("\ufeff").lower())


def _detect(columns: set[str]) -> str:
    if {"identifier", "github_username"} <= columns:
        return "github-classroom"
    if "student_id" in columns:
        return "plain"
    if "sid" in columns or ({"first_name", "last_name"} <= columns and "email" in columns):
        return "gradescope"
    expected = "; ".join(f"{kind}: {', '.join(cols)}" for kind, cols in FORMATS.items())
    raise RosterError(f"the roster's header ({', '.join(sorted(columns)) or 'empty'}) is none of the known "
                      f"formats – expected the columns of one of {expected}")


def _student(kind: str, row: dict[str, str]) -> Student | None:
    get = lambda key: (row.get(key) or "").strip()  # noqa: E731
    if kind == "github-classroom":
        return Student(get("identifier") or get("github_username"), "", get("name"), get("github_username"))
    if kind == "gradescope":
        if get("role").lower() not in _STUDENT_ROLES:
            return None  # instructors, TAs and readers are on Gradescope's roster too
        name = get("name") or get("full_name") or " ".join(filter(None, [get("first_name"), get("last_name")]))
        return Student(get("sid") or get("email"), get("email"), name)
    aliases = tuple(a.strip() for a in get("aliases").split(";") if a.strip())
    return Student(get("student_id"), get("email"), get("name"), get("github_username") or get("github"), aliases)


def parse_roster(text: str, source: str = "") -> Roster:
    """A roster from CSV ``text``; :class:`RosterError` names the expected columns when the header fits no format."""
    reader = csv.DictReader(io.StringIO(text))
    columns = {_column(c) for c in (reader.fieldnames or []) if c}
    kind = _detect(columns)
    students, seen = [], set()
    for number, raw in enumerate(reader, start=2):
        row = {_column(k): v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}
        if not any(v.strip() for v in row.values()):
            continue
        student = _student(kind, row)
        if student is None:
            continue
        if not student.student_id:
            raise RosterError(f"{source or 'the roster'}, line {number}: no student id ({FORMATS[kind][0]})")
        if student.student_id in seen:
            raise RosterError(f"{source or 'the roster'}, line {number}: the student id {student.student_id!r} "
                              "appears twice")
        seen.add(student.student_id)
        students.append(student)
    return Roster(students, kind, source)


def load_roster(path: Path) -> Roster:
    """Read the roster CSV at ``path`` (UTF-8, with or without a byte-order mark)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RosterError(f"cannot read the roster {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RosterError(f"the roster {str(path)!r} is not UTF-8 text (save it as CSV UTF-8)") from None
    return parse_roster(text, Path(path).name)
