"""``init`` and ``revision``: writing projects and revision files."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.script import Script

from migrasafe.errors import ProjectError
from migrasafe.project.config import Project, alembic_errors

Template = Literal["generic", "library"]
TEMPLATES: tuple[Template, ...] = ("generic", "library")

_TARGET_METADATA = {
    "generic": (
        "# Point this at your models' MetaData to enable autogenerate and drift checks:\n"
        "#   from myapp.models import Base\n"
        "#   target_metadata = Base.metadata\n"
        "target_metadata = None"
    ),
    "library": "from library.models import Base\n\ntarget_metadata = Base.metadata",
}
_DATABASE_FILE = {"generic": "app.db", "library": "library.db"}


@dataclass(frozen=True)
class InitResult:
    directory: Path
    template: Template
    files: tuple[Path, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "directory": str(self.directory),
            "template": self.template,
            "files": [str(p) for p in self.files],
        }


def init(directory: str | Path, template: Template = "generic") -> InitResult:
    """Write a new Alembic project into ``directory`` (which must be empty or absent)."""
    try:
        return _init(Path(directory), template)
    except OSError as exc:
        raise ProjectError(
            f"cannot write a project into {directory}: {exc.strerror or exc}"
            + (f" ({exc.filename})" if exc.filename else "")
        ) from exc


def _init(target: Path, template: Template) -> InitResult:
    if template not in TEMPLATES:
        raise ProjectError(f"unknown template {template!r}; choose one of {', '.join(TEMPLATES)}")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ProjectError(
            f"{target} is not an empty directory; init writes a new project and "
            "will not overwrite files: choose a new or empty directory"
        )
    templates = resources.files("migrasafe") / "templates"
    common = templates / "common"
    (target / "migrations" / "versions").mkdir(parents=True, exist_ok=True)
    contents = {
        "alembic.ini": common.joinpath("alembic.ini")
        .read_text()
        .replace("{{database_file}}", _DATABASE_FILE[template]),
        "migrations/env.py": common.joinpath("env.py")
        .read_text()
        .replace("{{target_metadata}}", _TARGET_METADATA[template]),
        "migrations/script.py.mako": common.joinpath("script.py.mako").read_text(),
    }
    written = []
    for name, text in contents.items():
        (target / name).write_text(text)
        written.append(target / name)
    if template != "generic":
        with resources.as_file(templates / template) as source:
            shutil.copytree(source, target, dirs_exist_ok=True, ignore=_ignore_caches)
            written += sorted(
                target / p.relative_to(source)
                for p in Path(source).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts
            )
    return InitResult(directory=target, template=template, files=tuple(written))


def _ignore_caches(_directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__"]


@dataclass(frozen=True)
class RevisionResult:
    revision: str
    path: Path
    message: str
    down_revision: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "revision": self.revision,
            "path": str(self.path),
            "message": self.message,
            "down_revision": list(self.down_revision),
        }


def next_revision_id(existing: list[str]) -> str | None:
    """The next sequential id (``0004`` after ``0003``, keeping the widest width).

    Only for a project that numbers its revisions (or has none yet): one
    whose ids are Alembic's random hex gets a random id too (None lets
    Alembic choose), as ``alembic revision`` would give it.
    """
    numbers = [rev for rev in existing if rev.isdigit()]
    if existing and not numbers:
        return None
    width = max((len(rev) for rev in numbers), default=4)
    candidate = max((int(rev) for rev in numbers), default=0) + 1
    while f"{candidate:0{width}d}" in existing:
        candidate += 1
    return f"{candidate:0{width}d}"


def revision(
    project: Project,
    message: str,
    *,
    autogenerate: bool = False,
    rev_id: str | None = None,
    head: str = "head",
    splice: bool = False,
    branch_label: str | None = None,
    depends_on: str | list[str] | None = None,
    version_path: str | None = None,
) -> RevisionResult:
    """Write a new revision file, as ``alembic revision`` with the same options.

    Its id is ``rev_id`` when given; else the next number when the project
    numbers its revisions (``0004`` after ``0003``), else Alembic's random id.
    """
    script = project.script
    if rev_id is None:
        rev_id = next_revision_id([s.revision for s in script.walk_revisions()])
    with alembic_errors(), project.activated():
        created = command.revision(
            project.config, message=message, autogenerate=autogenerate, rev_id=rev_id,
            head=head, splice=splice, branch_label=branch_label,
            depends_on=depends_on,  # type: ignore[arg-type]  # Alembic takes a list too
            version_path=version_path,
        )  # fmt: skip
    return _result(created, message)


def merge(
    project: Project,
    revisions: Sequence[str] = ("heads",),
    message: str | None = None,
    *,
    branch_label: str | None = None,
    rev_id: str | None = None,
) -> RevisionResult:
    """Write a merge revision of ``revisions`` (default: every head), as ``alembic merge``."""
    script = project.script
    if rev_id is None:
        rev_id = next_revision_id([s.revision for s in script.walk_revisions()])
    with alembic_errors(), project.activated():
        created = command.merge(project.config, list(revisions), message=message,
                                branch_label=branch_label, rev_id=rev_id)  # fmt: skip
    return _result(created, message or "")


def _result(created: object, message: str) -> RevisionResult:
    if not isinstance(created, Script):
        raise ProjectError(f"Alembic wrote no single revision for {message!r}")
    return RevisionResult(
        revision=created.revision,
        path=Path(created.path),
        message=message,
        down_revision=tuple(created._versioned_down_revisions),
    )


@dataclass(frozen=True)
class EditResult:
    paths: tuple[Path, ...]

    def to_dict(self) -> dict[str, object]:
        return {"paths": [str(p) for p in self.paths]}


def edit(project: Project, revision: str) -> EditResult:
    """Open the revision file(s) named by ``revision`` in $EDITOR, as ``alembic edit``."""
    from alembic.util import open_in_editor

    from migrasafe.commands.revisions import show

    paths = tuple(Path(found.path) for found in show(project, revision))
    if not paths:  # `edit current` on a database at base
        raise ProjectError(f"{revision!r} names no revision file (the database is at base?)")
    for path in paths:
        try:
            open_in_editor(str(path))
        except Exception as exc:  # Alembic's CommandError: no editor found
            raise ProjectError(
                f"cannot open {path} in an editor: {exc}; set $EDITOR (or $VISUAL)"
            ) from exc
    return EditResult(paths)
