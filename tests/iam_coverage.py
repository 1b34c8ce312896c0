"""IAM coverage: every AWS action a function performs in the suite is granted by its Policies in template.yaml,
and every grant is used by some test (docs/decisions.md D23).

moto enforces no IAM, so a call the role does not allow passes every test and fails on AWS (the inbound
processor's ``DeleteItem`` on the messages table did, silently). Loaded for the whole suite by
tests/conftest.py (``pytest_plugins``):

- every process of the run (each xdist worker, and each ``python -m local.dev`` an e2e test starts, through
  ``LOCAL_AWS_ACTIONS_DIR``) records what the template's functions call (``local.aws_actions``) into a file
  of one directory the controller created;
- at the end, the controller compares the union with the functions' Policies, resolved against the same
  canonical resources (logical ids for names), and fails the run:
  - always, for an action a function used on a resource its Policies do not allow (a subset of the tests
    is enough to prove a call is made);
  - when the whole suite ran (no paths, ``-k``, ``-m`` or deselection) and passed, for a granted action on a
    resource no test used, unless ``ALLOWED_UNUSED`` below names it with its reason.

Policies must be inline statement lists (tests/unit/test_template_security.py requires it too): a SAM policy
template, a managed policy, a ``Role``, ``Deny``, ``NotAction``/``NotResource`` or a ``Condition`` is reported as
something this check cannot evaluate. Not covered, with the reason: what SAM adds outside ``Policies``
(AWSLambdaBasicExecutionRole for the logs, AWSLambdaDynamoDBExecutionRole for reading the stream) and what a
fault injected at the ``_make_api_call`` layer (tests/faults/faultlib.py) keeps from being prepared at all.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local import TEMPLATE_PATH
from local.aws_actions import RECORD_DIR_ENV, Recorder, Use, canonical_resources, install, read_uses
from local.intrinsics import UnresolvableError
from local.template import Template, load_template

# (function, action, canonical resource pattern) → why the grant stays although no test exercises it.
# Keep it tiny: a grant nothing uses is a grant nobody needs until a test shows otherwise.
ALLOWED_UNUSED: dict[tuple[str, str, str], str] = {}

DIRECTORY_KEY = "iam_coverage_dir"
STATEMENT_KEYS = frozenset({"Sid", "Effect", "Action", "Resource"})


# ---------------------------------------------------------------------------------------------- grants
@dataclass(frozen=True)
class Grant:
    function: str
    action: str  # as written (may hold IAM wildcards)
    resource: str  # canonical ARN pattern
    where: str  # "Policies[1] statement 3"

    @property
    def key(self) -> tuple[str, str, str]:
        return self.function, self.action, self.resource

    def allows(self, use: Use) -> bool:
        return (
            use.function == self.function
            and _glob(self.action, True).fullmatch(use.action) is not None
            and _glob(self.resource, False).fullmatch(use.resource) is not None
        )


@functools.cache
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM's wildcards: ``*`` any run of characters (``/`` and ``:`` included), ``?`` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE if ignore_case else 0)


def policy_grants(template: Template) -> tuple[list[Grant], list[str]]:
    """Each (function, action, resource) the functions' Policies allow, and what could not be evaluated."""
    resources = canonical_resources(template)
    grants: list[Grant] = []
    problems: list[str] = []
    for spec in template.functions():
        if not resources.enabled(spec.condition):
            continue
        lid = spec.logical_id
        if spec.role is not None:
            problems.append(f"{lid}: Role is set; the check only evaluates inline Policies statements")
        for n, policy in enumerate(spec.policies, 1):
            if not (isinstance(policy, dict) and set(policy) == {"Statement"}):
                problems.append(f"{lid}: Policies[{n}] {policy!r} is not a statement list; the check cannot tell "
                                "what it grants (write it as statements)")
                continue
            try:
                statements = resources.resolve(policy["Statement"])
            except UnresolvableError as error:
                problems.append(f"{lid}: Policies[{n}] does not resolve: {error}")
                continue
            for m, statement in enumerate(_as_list(statements), 1):
                where = f"Policies[{n}] statement {m}" + (f" ({statement['Sid']})" if "Sid" in statement else "")
                unsupported = sorted(set(statement) - STATEMENT_KEYS)
                if unsupported or statement.get("Effect") != "Allow":
                    problems.append(f"{lid}: {where} has {unsupported or statement.get('Effect')}, which this check "
                                    "does not evaluate")
                    continue
                grants += [
                    Grant(lid, str(action), str(resource), where)
                    for action in _as_list(statement.get("Action"))
                    for resource in _as_list(statement.get("Resource"))
                ]
    return grants, problems


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------------------------------------- comparison
@dataclass
class Report:
    uses: int = 0
    missing: list[Use] = field(default_factory=list)
    unused: list[Grant] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unused_checked: str = ""  # why unused grants were not checked, when they were not ("" = they were)

    @property
    def failed(self) -> bool:
        return bool(self.missing or self.unused or self.problems)

    def lines(self) -> list[str]:
        out: list[str] = []
        by_need: dict[tuple[str, str], list[Use]] = defaultdict(list)
        for use in self.missing:
            by_need[(use.function, use.action)].append(use)
        for (function, action), uses in sorted(by_need.items()):
            first = min(uses, key=lambda u: u.resource)
            more = f" (and {len(uses) - 1} more resource(s))" if len(uses) > 1 else ""
            out.append(f"{function} needs {action} on {first.resource}{more}, which its Policies do not allow "
                       f"(first in {first.where or 'no test'})")
        out += [
            f"{g.function} is granted {g.action} on {g.resource} ({g.where}), which no test used: remove the grant, "
            "or add it to ALLOWED_UNUSED in tests/iam_coverage.py with the reason"
            for g in self.unused
        ]
        return out + self.problems


def compare(
    template: Template,
    uses: Iterable[Use],
    *,
    check_unused: bool = True,
    allowed_unused: Mapping[tuple[str, str, str], str] = ALLOWED_UNUSED,
) -> Report:
    grants, problems = policy_grants(template)
    report = Report(problems=problems)
    by_function: dict[str, list[Grant]] = defaultdict(list)
    for grant in grants:
        by_function[grant.function].append(grant)
    used: set[tuple[str, str, str]] = set()
    for use in uses:
        report.uses += 1
        allowing = [g for g in by_function.get(use.function, []) if g.allows(use)]
        if not allowing:
            report.missing.append(use)
        used.update(g.key for g in allowing)
    if not check_unused:
        return report
    granted = {g.key for g in grants}
    report.unused = [g for g in grants if g.key not in used and g.key not in allowed_unused]
    for key, reason in allowed_unused.items():
        if key not in granted:
            report.problems.append(f"ALLOWED_UNUSED names {key}, which the template no longer grants ({reason})")
        elif key in used:
            report.problems.append(f"ALLOWED_UNUSED names {key}, which a test now uses: remove it from the list")
    return report


# ---------------------------------------------------------------------------------------------- the plugin
class IamCoverage:
    """One per process. Workers (and single-process runs) record; the controller (or the single process)
    compares at the end."""

    def __init__(self, directory: Path, *, owner: bool, undo: Callable[[], None]) -> None:
        self.directory = directory
        self.owner = owner  # created the directory: compares and cleans up
        self.undo = undo
        self.deselected = 0
        self.crashed_workers = 0
        self.report: Report | None = None

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller compares for everyone
            workeroutput["iam_coverage"] = {"deselected": self.deselected}
            return
        partial = self._partial(session)
        self.report = compare(load_template(TEMPLATE_PATH), read_uses(self.directory), check_unused=not partial)
        self.report.unused_checked = partial
        if self.report.failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _partial(self, session: pytest.Session) -> str:
        """Why this run cannot tell which grants are unused ("" when it can)."""
        config = session.config
        if config.args_source != pytest.Config.ArgsSource.TESTPATHS:
            return "not the whole suite (paths given)"
        if self.deselected:
            return f"{self.deselected} test(s) deselected"
        if self.crashed_workers:
            return f"{self.crashed_workers} worker(s) crashed"
        if session.testsfailed or session.shouldfail or session.shouldstop:
            return "tests failed or the run stopped early"
        return ""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        report = self.report
        if report is None:
            return
        if report.unused_checked:
            unused = f"unused grants not checked: {report.unused_checked}"
        else:
            unused = "unused grants checked"
        if not report.failed:
            used = f"; {unused}" if report.unused_checked else ", and every grant used"
            terminalreporter.write_line(f"IAM coverage: {report.uses} (function, action, resource) uses, all allowed "
                                        f"by template.yaml{used}")
            return
        terminalreporter.write_line(f"IAM coverage: the functions' Policies in template.yaml do not match what they "
                                    f"do ({report.uses} uses; {unused}):", red=True)
        for line in report.lines():
            terminalreporter.write_line(f"  - {line}", red=True)

    def close(self) -> None:
        self.undo()
        if self.owner:
            shutil.rmtree(self.directory, ignore_errors=True)


class _Nodes:
    """On the xdist controller: tells workers where to record, and hears what they deselected."""

    def __init__(self, coverage: IamCoverage) -> None:
        self.coverage = coverage

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[DIRECTORY_KEY] = str(self.coverage.directory)

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {}).get("iam_coverage")
        if error or output is None:
            self.coverage.crashed_workers += 1
        else:
            self.coverage.deselected += output["deselected"]


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        directory, owner, name = Path(workerinput[DIRECTORY_KEY]), False, str(workerinput.get("workerid", "worker"))
    else:
        directory, owner, name = Path(tempfile.mkdtemp(prefix="iam-coverage-")), True, "main"
    os.environ[RECORD_DIR_ENV] = str(directory)  # local stacks the tests start record there too
    undo = install(Recorder(directory / f"{name}-{os.getpid()}.jsonl"))
    coverage = IamCoverage(directory, owner=owner, undo=undo)
    config.pluginmanager.register(coverage, "iam_coverage_instance")
    if workerinput is None and config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_Nodes(coverage), "iam_coverage_nodes")


def pytest_unconfigure(config: pytest.Config) -> None:
    coverage = config.pluginmanager.get_plugin("iam_coverage_instance")
    if isinstance(coverage, IamCoverage):
        coverage.close()
        config.pluginmanager.unregister(coverage)
    os.environ.pop(RECORD_DIR_ENV, None)
