"""Findings in the formats CI systems and editors read: gcc-style lines, GitHub
annotations, SARIF 2.1.0 (GitHub code scanning and most static-analysis viewers).

Plain functions from findings to text; the CLI picks one with ``--format``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from importlib.metadata import version

from migrasafe.checks.findings import Check, Finding

FORMATS = ("text", "json", "github", "gcc", "sarif")


def _relative(path: str | None) -> str:
    """Paths relative to the current directory, as CI annotations expect."""
    if not path:
        return ""
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


# What each tool calls the severity "info".
_GCC = {"info": "note"}
_GITHUB = {"info": "notice"}
_SARIF = {"info": "note"}


def gcc(findings: Sequence[Finding]) -> str:
    """``path:line:1: error: message [rule]``: what editors and compilers' parsers read."""
    return "".join(
        f"{_relative(f.path)}:{f.line or 1}:1: {_GCC.get(f.severity, f.severity)}: "
        f"{' '.join(f.message.split())} [{f.rule}]\n"
        for f in findings
    )


def _escape_github(text: str, *, property_: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_ else text


def github(findings: Sequence[Finding]) -> str:
    """GitHub Actions workflow commands: each finding becomes an annotation on its line."""
    lines = []
    for f in findings:
        props = [f"file={_escape_github(_relative(f.path), property_=True)}"]
        if f.line:
            props.append(f"line={f.line}")
        title = f"{f.rule} ({f.revision or '?'})"
        props.append(f"title={_escape_github(title, property_=True)}")
        level = _GITHUB.get(f.severity, f.severity)
        lines.append(f"::{level} {','.join(props)}::{_escape_github(f.message)}\n")
    return "".join(lines)


def sarif(findings: Sequence[Finding], checks: Sequence[Check[object, object]], tool: str) -> str:
    """SARIF 2.1.0: one run, the rules of the registry, one result per finding."""
    rules = [
        {"id": c.rule, "shortDescription": {"text": c.summary},
         "defaultConfiguration": {"level": _SARIF.get(c.severity, c.severity)}}
        for c in checks
    ]  # fmt: skip
    results = []
    for f in findings:
        location: dict[str, object] = {"artifactLocation": {"uri": _relative(f.path)}}
        if f.line:
            location["region"] = {"startLine": f.line}
        results.append({
            "ruleId": f.rule, "level": _SARIF.get(f.severity, f.severity),
            "message": {"text": f.message},
            "locations": [{"physicalLocation": location}],
            "properties": {"revision": f.revision, "table": f.table, "column": f.column},
        })  # fmt: skip
    document = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": f"migrasafe {tool}", "version": version("migrasafe"),
                                "informationUri": "https://pypi.org/project/migrasafe/",
                                "rules": rules}},
            "results": results,
        }],
    }  # fmt: skip
    return json.dumps(document, indent=2) + "\n"
