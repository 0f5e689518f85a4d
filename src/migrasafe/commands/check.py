"""``check``: would ``revision --autogenerate`` write anything? (``alembic check``)

Alembic's own autogenerate (its RevisionContext, with every option ``env.py``
passes to ``configure()``: ``include_object``, ``compare_type``, plugins) runs on
the project's database through ``env.py``, which is only read. The operations
it would write are returned, one phrase each, instead of a single exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrasafe.errors import ConfigError, RevisionError

if TYPE_CHECKING:
    from migrasafe.project.config import Project


@dataclass(frozen=True)
class Difference:
    table: str | None
    description: str

    def to_dict(self) -> dict[str, object]:
        return {"table": self.table, "description": self.description}


@dataclass(frozen=True)
class CheckResult:
    url: str
    differences: tuple[Difference, ...]

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, object]:
        return {
            "url": self.url,
            "ok": self.ok,
            "differences": [d.to_dict() for d in self.differences],
        }


def check(project: Project) -> CheckResult:
    """The operations autogenerate finds between the models and the database at head."""
    from alembic.autogenerate import RevisionContext
    from alembic.util import CommandError

    from migrasafe.checks.verify.drift import describe_diff
    from migrasafe.db.urls import redact
    from migrasafe.project.env import run_env

    arguments: dict[str, Any] = dict(
        message=None, autogenerate=True, sql=False, head="head", splice=False,
        branch_label=None, version_path=None, rev_id=None, depends_on=None,
    )  # fmt: skip
    revision_context = RevisionContext(project.config, project.script, arguments)
    urls: list[str] = []

    def compare(heads: tuple[str, ...], context: Any) -> list[Any]:
        if context.opts.get("target_metadata") is None:
            raise ConfigError(
                "env.py passes no target_metadata to context.configure(), so there are no "
                "models to compare: set target_metadata = Base.metadata in env.py"
            )
        if context.connection is not None:
            urls.append(redact(context.connection.engine.url))
        try:
            revision_context.run_autogenerate(heads, context)
        except CommandError as exc:  # "Target database is not up to date."
            raise RevisionError(
                f"{exc} The database is at {', '.join(heads) or 'base'}: "
                "run `migrasafe upgrade` first, as `alembic check` requires"
            ) from exc
        return []

    run_env(project, compare, template_args=revision_context.template_args,
            revision_context=revision_context)  # fmt: skip
    diffs: list[Any] = []
    # env.py's process_revision_directives may empty the list when nothing changed (the
    # cookbook's "don't write an empty revision"): then there is nothing to report
    for generated in revision_context.generated_revisions[-1:]:
        for ops in generated.upgrade_ops_list:
            diffs.extend(ops.as_diffs())
    found = []
    for diff in diffs:
        table, description = describe_diff(diff)
        found.append(Difference(table, description))
    return CheckResult(url=urls[0] if urls else "", differences=tuple(found))
