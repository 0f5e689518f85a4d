"""Text rendering of command results (the CLI's only output code).

rich renders the commands that may take a while; ``history``, ``status`` and
the findings of ``validate`` are written through :mod:`migrasafe.cli.plain`, so
that their lean path never imports rich.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import migrasafe.cli.plain as plain

if TYPE_CHECKING:  # the CLI imports this module for every text output: keep it light
    from rich.console import Console

    from migrasafe.checks.findings import Check, Finding
    from migrasafe.checks.lint import LintReport
    from migrasafe.checks.lint.fix import FileFix
    from migrasafe.checks.verify import Progress, VerifyReport
    from migrasafe.commands.check import CheckResult
    from migrasafe.commands.compat import CompatReport
    from migrasafe.commands.demo import DemoReport
    from migrasafe.commands.history import History
    from migrasafe.commands.phases import PhasePlan
    from migrasafe.commands.revisions import Current, RevisionInfo
    from migrasafe.commands.scaffold import EditResult, InitResult, RevisionResult
    from migrasafe.commands.status import Status
    from migrasafe.deploy.checksums import AcceptResult
    from migrasafe.deploy.migrate import MigrationResult


def _console() -> Console:
    from rich.console import Console

    # Created per call: click's test runner swaps sys.stdout between invocations.
    return Console(file=sys.stdout, soft_wrap=True, highlight=False)


def escape(text: str) -> str:
    """rich's markup escaping (importing rich only for output that uses it), and control
    characters shown, not obeyed (a revision's docstring, a driver's message)."""
    from rich.markup import escape as rich_escape

    return rich_escape(plain.visible(text))


def init_result(result: InitResult) -> None:
    out = _console()
    out.print(f"Created a [bold]{result.template}[/] project in {escape(str(result.directory))}:")
    for path in result.files:
        out.print(f"  {escape(str(path.relative_to(result.directory)))}")
    out.print(f"Next: cd {escape(str(result.directory))} && migrasafe upgrade")


def migration_result(result: MigrationResult, *, partial: bool = False) -> None:
    """What a run did; ``partial``: what it did before it failed (the error follows).

    Written without rich: a long upgrade prints a line per revision, and rich's
    rendering of 500 lines costs a twentieth of the upgrade itself.
    """
    if result.sql is not None:
        sys.stdout.write(result.sql)
        return
    if result.direction == "stamp":
        was, now = ", ".join(sorted(result.before)), ", ".join(sorted(result.after))
        plain.write([f"Stamped {result.url}: {was or 'base'} -> {now or 'base'} "
                     "(no migration ran)."])  # fmt: skip
        return
    style = plain.Styler(sys.stdout)
    verb = "Applied" if result.direction == "upgrade" else "Reverted"
    lines = [f"{verb} {style(step.revision, 'bold')}  {step.message}" for step in result.steps]
    for skipped in result.skipped:
        lines.append(f"Skipped {style(skipped.revision, 'bold')}  {skipped.operation} "
                     "(already present)")  # fmt: skip
    if partial:
        if result.failed:
            lines.append(f"{style('Failed', 'red')}  {style(result.failed, 'bold')}")
    elif not result.steps:
        lines.append(f"Nothing to do: {result.url} is already at "
                     f"{', '.join(result.after) or 'base'}.")  # fmt: skip
    else:
        lines.append(f"{result.url} is now at {', '.join(result.after) or 'base'}.")
    plain.write(lines)


def status(result: Status) -> None:
    style = plain.Styler(sys.stdout)
    lines = [f"Database:  {result.url}"]
    if result.version_table != "alembic_version":
        lines.append(f"Version table: {result.version_table}")
    lines += [
        f"Current:   {', '.join(result.current) or '(none: base)'}",
        f"Heads:     {', '.join(result.heads) or '(none)'}",
        f"Pending:   {', '.join(result.pending) or '(none)'}",
    ]
    if result.unknown:
        lines.append(
            f"{style('Unknown:', 'red')}   {', '.join(result.unknown)} "
            "(recorded in the database, defined by no script)"
        )
    for m in result.modified:
        lines.append(
            f"{style('Modified:', 'red')}  {m.revision} ({m.path}) changed after it was applied "
            f"on {m.applied_at} by {m.applied_by}; review the change, then "
            f"`migrasafe accept {m.revision}` (or restore the file)"
        )
    if result.half_applied and result.under_way:
        lines.append(f"{style('Under way:', 'yellow')} a run holds the migration lock now: a "
                     "half-applied revision below may be its own, still running; look again "
                     "when it ends")  # fmt: skip
    for revision in result.half_applied:
        lines.append(
            f"{style('Half-applied:', 'red')} {revision} stopped midway (killed, or it failed) "
            "after committing part of its work, while its version was not recorded; "
            f"`migrasafe upgrade --resume` runs it again skipping what is present, or repair "
            f"the schema by hand and `migrasafe accept {revision}`"
        )
        lines += _found(result, revision)
    for revision in result.half_reverted:
        lines.append(
            f"{style('Half-reverted:', 'red')} {revision} stopped midway through its "
            "downgrade (killed, or it failed) after committing part of it, while the version "
            "table still has it applied; `migrasafe downgrade --resume TARGET` runs it again "
            "skipping what is already undone, or repair the schema by hand and "
            f"`migrasafe accept {revision}`"
        )
        lines += _found(result, revision)
    if result.unverified:
        shown = ", ".join(result.unverified[:5])
        more = f" and {len(result.unverified) - 5} more" if len(result.unverified) > 5 else ""
        label = style("Unverified:", "red") if result.strict else style("Note:", "yellow")
        lines.append(
            f"{label} {shown}{more} applied without a recorded checksum (by plain Alembic, "
            "or the record was lost), so an edit cannot be seen; review, then run "
            "`migrasafe accept`"
        )
    stopped = len(result.half_applied) + len(result.half_reverted)
    if result.up_to_date and stopped:
        lines.append(f"{style('Not up to date:', 'red')} {stopped} "
                     "half-applied or half-reverted revision(s), see above.")  # fmt: skip
    elif result.up_to_date:
        failing = result.modified or (result.strict and result.unverified)
        if failing:
            lines.append("Up to date, but see above.")
        elif result.unverified:
            lines.append(style("Up to date", "green") + f" ({len(result.unverified)} "
                         "unverified revision(s): see the note above).")  # fmt: skip
        else:
            lines.append(style("Up to date.", "green"))
    else:
        lines.append(
            f"{style('Not up to date:', 'yellow')} {len(result.pending)} pending revision(s)."
        )
    plain.write(lines)


def _found(result: Status, revision: str) -> list[str]:
    """The operations of a revision stopped midway, and whether each is in the database."""
    said = {True: "present", False: "absent", None: "cannot tell"}
    return [f"    {said[f.present]:<12} {f.operation}" for f in result.found
            if f.revision == revision]  # fmt: skip


def accept_result(result: AcceptResult) -> None:
    out = _console()
    if result.accepted:
        out.print(f"Accepted the current files of {', '.join(result.accepted)} "
                  f"in {escape(result.url)}.")  # fmt: skip
    elif not result.cleared:
        out.print("Nothing to accept: every applied script matches its recorded checksum.")
    if result.cleared:
        out.print(f"Cleared the half-applied note of {', '.join(result.cleared)} "
                  f"in {escape(result.url)}.")  # fmt: skip


def history(result: History) -> None:
    style = plain.Styler(sys.stdout)
    lines = []
    for entry in result.entries:
        marks = [
            name
            for name, on in (
                ("head", entry.is_head),
                ("current", entry.is_current),
                ("branch point", entry.is_branch_point),
                ("merge point", entry.is_merge_point),
            )
            if on
        ]
        parents = ", ".join(entry.down_revision) or "<base>"
        if entry.depends_on:  # as Alembic shows them: "parent (dependencies) -> revision"
            parents += f" ({', '.join(entry.depends_on)})"
        branches = f" ({', '.join(entry.branch_labels)})" if entry.branch_labels else ""
        label = " " + style(f"({', '.join(marks)})", "bold") if marks else ""
        lines.append(f"{parents} -> {entry.revision}{branches}{label}, {entry.message}")
    plain.write(lines)


def findings(found: Sequence[Finding], files: int | None = None) -> None:
    style = plain.Styler(sys.stdout)
    lines = []
    for f in found:
        where = f.path or ""
        if f.line:
            where += f":{f.line}"
        colour = {"error": "red", "warning": "yellow"}.get(f.severity, "bold")
        if f.table:
            where += f" [{f.table}{'.' + f.column if f.column else ''}]"
        revision = f" ({f.revision})" if f.revision else ""
        lines.append(f"{where}: {style(f.severity, colour)} {style(f.rule, 'bold')}"
                     f"{revision}: {f.message}")  # fmt: skip
    errors = sum(1 for f in found if f.severity == "error")
    warnings = sum(1 for f in found if f.severity == "warning")
    notes = len(found) - errors - warnings
    scope = f" in {files} revision files" if files is not None else ""
    noted = f", {notes} note(s)" if notes else ""
    lines.append(f"{errors} error(s), {warnings} warning(s){noted}{scope}.")
    plain.write(lines)


def lint_report(report: LintReport) -> None:
    findings(report.findings, report.revisions)
    if report.suppressed:
        _console().print(f"{report.suppressed} finding(s) suppressed by ignore comments or "
                         "pyproject.toml.")  # fmt: skip
    _console().print(f"Linted for {report.dialect}.")


def rules(checks: Sequence[Check[Any, Any]]) -> None:
    from rich.table import Table

    table = Table(box=None)
    table.add_column("rule", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("what it finds")
    for check in checks:
        table.add_row(check.rule, check.severity, check.summary)
    _console().print(table)


def revision_result(result: RevisionResult) -> None:
    parents = ", ".join(result.down_revision) or "base"
    _console().print(
        f"Wrote revision [bold]{result.revision}[/] (on {parents}): {escape(str(result.path))}"
    )


def _line(info: RevisionInfo) -> str:
    """One revision as ``alembic heads`` and ``history`` show it: id, labels, marks, message."""
    labels = f" ({', '.join(info.branch_labels)})" if info.branch_labels else ""
    marks = [name for name, on in (("head", info.is_head), ("branch point", info.is_branch_point),
                                   ("merge point", info.is_merge_point)) if on]  # fmt: skip
    mark = f" ({', '.join(marks)})" if marks else ""
    return f"{info.revision}{labels}{mark}, {info.message}"


def revision_lines(found: Sequence[RevisionInfo], empty: str) -> None:
    plain.write([_line(info) for info in found] or [empty])


def show(found: Sequence[RevisionInfo]) -> None:
    lines: list[str] = []
    for info in found:
        if lines:
            lines.append("")
        lines.append(f"Revision ID: {info.revision}")
        lines.append(f"Revises: {', '.join(info.down_revision) or '<base>'}")
        for label, values in (("Depends on", info.depends_on),
                              ("Branch labels", info.branch_labels),
                              ("Next revisions", info.next_revisions)):  # fmt: skip
            if values:
                lines.append(f"{label}: {', '.join(values)}")
        marks = [name for name, on in (("head", info.is_head), ("base", info.is_base),
                                       ("branch point", info.is_branch_point),
                                       ("merge point", info.is_merge_point)) if on]  # fmt: skip
        if marks:
            lines.append(f"Is: {', '.join(marks)}")
        lines.append(f"Path: {info.path}")
        lines.append("")
        lines.extend(f"    {line}".rstrip() for line in (info.doc or info.message).splitlines())
    plain.write(lines)


def branches(found: Sequence[RevisionInfo]) -> None:
    lines: list[str] = []
    for info in found:
        lines.append(_line(info))
        lines.extend(f"  -> {rev}" for rev in info.next_revisions)
    plain.write(lines or ["No branch points: the history is linear."])


def current(result: Current) -> None:
    lines = [f"{result.url} ({result.version_table}):"]
    lines += [f"  {_line(info)}" for info in result.revisions]
    lines += [f"  {rev} (defined by no revision file)" for rev in result.unknown]
    if not result.heads:
        lines.append("  <base>: no revision applied")
    plain.write(lines)


def check(result: CheckResult) -> None:
    if result.ok:
        plain.write([f"No new upgrade operations detected: the models match {result.url}."])
        return
    lines = [f"The models differ from {result.url}; `migrasafe revision --autogenerate` "
             "would write:"]  # fmt: skip
    lines += [f"  {d.description}" for d in result.differences]
    plain.write(lines)


def edited(result: EditResult) -> None:
    plain.write([f"Edited {path}" for path in result.paths])


def fixes(done: Sequence[FileFix], report: LintReport, dry_run: bool) -> None:
    sys.stdout.write("".join(f.diff for f in done))
    count = sum(len(f.fixed) for f in done)
    reverses = sum(len(f.reverses) for f in done)
    verb = "Would rewrite" if dry_run else "Rewrote"
    also = f" (and {reverses} reverse(s) in downgrade())" if reverses else ""
    plain.write([f"{verb} {count} call(s){also} in {len(done)} file(s) as their safe_op forms."])
    if report.findings:
        findings(report.findings, report.revisions)
        plain.write(["These have no safe form to write: see each message."])


def compat(report: CompatReport) -> None:
    findings(report.findings)
    applied = ", ".join(report.applied) or "nothing"
    where = "the expand phase" if report.after == "expand" else "head"
    verdict = ("Both releases work on that schema." if report.ok
               else "A release would break: see the errors above.")  # fmt: skip
    plain.write([f"Held the models at {report.ref} and the working tree's against a scratch "
                 f"database upgraded to {where} ({applied}). {verdict}"])  # fmt: skip


def pending_phases(by_phase: dict[str, list[str]]) -> None:
    lines = [f"Pending, {name}: {', '.join(revisions)}" for name, revisions in by_phase.items()
             if revisions]  # fmt: skip
    plain.write(lines or ["Pending, by phase: (none)"])


def phase_plan(plan: PhasePlan) -> None:
    out = _console()
    if not plan.apply:
        out.print(f"Nothing to apply in the {plan.phase} phase.")
    for revision, why in plan.waiting:
        out.print(f"[yellow]Waits for the contract phase:[/] {revision}: {escape(why)}")
    if plan.waiting and plan.phase == "expand":
        out.print("Next: roll out the new release, then `migrasafe upgrade --phase contract`.")


def demo(report: DemoReport) -> None:
    out = _console()
    out.print(f"migrasafe demo: the library reference project on {escape(report.url)}")
    for number, step in enumerate(report.steps, 1):
        mark = "[green]ok[/]" if step.ok else "[red]FAILED[/]"
        out.print(f"\n{number:>2}. {escape(step.name)} ... {mark}")
        for line in step.details:
            out.print(f"    {escape(line)}")
    out.print("\n[green]Every step did what it should.[/]" if report.ok
              else "\n[red]The demo failed; see the step marked FAILED.[/]")  # fmt: skip


@contextmanager
def progress(label: str, *, enabled: bool = True) -> Iterator[Progress | None]:
    """Progress on stderr: a bar on a terminal, a line every few seconds when piped."""
    from migrasafe.progress import reporter

    with reporter(label, enabled=enabled) as report:
        yield report


def verify(report: VerifyReport) -> None:
    out = _console()
    findings(report.findings)
    for note in report.notes:
        out.print(f"[yellow]Note:[/] {escape(note)}.")
    out.print(
        f"Checked {report.checked} of {report.revisions} revisions on a scratch database "
        f"({escape(report.database)}, removed): {report.steps} migration steps, "
        f"{report.rows} generated rows per table, seed {report.seed}."
    )
    if report.refused_rows:
        refused = ", ".join(f"{t}: {n}" for t, n in sorted(report.refused_rows.items()))
        out.print(f"[yellow]Rows the database refused (constraints not understood):[/] {refused}")
    if report.lock_trace is not None:
        out.print("Lock trace (PostgreSQL; tables that had rows), held against lint:")
        for entry in report.lock_trace:
            if "lock" in entry:
                rewritten = ", rewritten" if entry["rewritten"] else ""
                out.print(
                    f"  {entry['revision']} {escape(str(entry['table']))}: {entry['lock']}"
                    f"{rewritten}, held {entry['held_seconds']} s, lock_timeout "
                    f"{entry['lock_timeout']}, by {escape(repr(entry['statement']))} "
                    + escape(f"[lint: {entry['lint']}]")
                )
            else:
                out.print(
                    f"  {entry['revision']} {escape(str(entry['table']))}: no blocking lock nor "
                    "rewrite seen "
                    + escape(f"[lint over-reported: {', '.join(entry['lint_rules'])}]")  # type: ignore[arg-type]
                )
    if report.models_not_compared:
        out.print(f"[yellow]Models not compared with the migrated schema:[/] "
                  f"{escape(report.models_not_compared)}.")  # fmt: skip
    coverage = report.coverage
    out.print(f"Coverage: {coverage.summary()}.")
    for label, group in (("schema only", coverage.schema_only),
                         ("upgrade only", coverage.upgrade_only),
                         ("not checked", coverage.not_checked)):  # fmt: skip
        for revision, why in group.items():
            out.print(f"  {label}: {revision}: {escape(why)}")
    style = "red" if not report.ok else "green" if report.fully_checked else "yellow"
    out.print(f"[{style}]{escape(report.verdict)}[/]")
