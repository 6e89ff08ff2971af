"""`alerts:` in flow files and `notifiers:` in seamline.yaml: checked like every other key, each
problem with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from seamline.cli import write_example
from seamline.errors import ProjectError
from seamline.observe.alerts import FlowRules
from seamline.observe.spec import RULES, EmailNotifier, SlackNotifier, WebhookNotifier
from seamline.project import load_project
from seamline.settings import Secret

FLOW = "flows/orders-to-oms.yaml"
HUB = "seamline.yaml"

NOTIFIERS = """
notifiers:
  ops-slack:
    kind: slack
    url: ${SEAMLINE_TEST_SLACK_URL}
  pager:
    kind: webhook
    url: https://alerts.example.com/in
    secret: {file: secrets/pager.secret}
  oncall:
    kind: email
    host: smtp.example.com
    username: alerts
    password: {file: secrets/smtp.secret}
    sender: hub@example.com
    to: [oncall@example.com]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "p"
    write_example(root)
    (root / "secrets" / "pager.secret").write_text("whsec_c2VjcmV0LXNlY3JldA==")
    (root / "secrets" / "smtp.secret").write_text("smtp-password-1")
    monkeypatch.setenv("SEAMLINE_TEST_SLACK_URL", "https://hooks.slack.example/T0/B0/xyz")
    with (root / HUB).open("a") as f:
        f.write(NOTIFIERS)
    return root


def add_alerts(root: Path, text: str) -> None:
    with (root / FLOW).open("a") as f:
        f.write(text)


def line_of(root: Path, file: str, fragment: str) -> int:
    lines = (root / file).read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if fragment in text)


def test_notifiers_and_alerts_load_typed_with_secrets_hidden(project: Path) -> None:
    add_alerts(
        project,
        "alerts:\n  notify: [ops-slack, oncall]\n  backlog: {above: 500}\n  volume: false\n"
        "  silence: {after: 25m, days: mon-fri, hours: '08:00-20:00',"
        " timezone: Europe/Amsterdam, label: trading hours}\n",
    )
    loaded = load_project(project)
    slack, pager, mail = (loaded.notifiers[n] for n in ("ops-slack", "pager", "oncall"))
    assert isinstance(slack, SlackNotifier) and isinstance(slack.url, Secret)
    assert isinstance(pager, WebhookNotifier) and pager.url == "https://alerts.example.com/in"
    assert isinstance(mail, EmailNotifier) and mail.use_starttls and mail.port == 587
    assert "smtp-password-1" not in repr(loaded.notifiers)
    (rules,) = FlowRules.of(loaded)
    assert rules.notify == ("ops-slack", "oncall")
    assert rules.alerts.backlog.above == 500
    assert not rules.alerts.volume.enabled
    assert rules.alerts.silence.days == ["mon", "tue", "wed", "thu", "fri"]
    assert rules.alerts.dead_letters.enabled  # the defaults stay on


def test_a_flow_without_notify_tells_every_notifier(project: Path) -> None:
    (rules,) = FlowRules.of(load_project(project))
    assert rules.notify == ("oncall", "ops-slack", "pager")
    assert not rules.alerts.silence.enabled  # silence needs a schedule: off unless written


# (case, file, text appended, line fragment, message fragment)
BROKEN = [
    (
        "unknown rule",
        FLOW,
        "alerts:\n  dead_leters: true\n",
        "dead_leters",
        "unknown key 'dead_leters' in alerts",
    ),
    (
        "unknown key in a rule",
        FLOW,
        "alerts:\n  backlog: {abov: 5}\n",
        "backlog",
        "unknown key 'abov' in alerts.backlog",
    ),
    (
        "bad percentage",
        FLOW,
        "alerts:\n  failure_rate: {above: lots}\n",
        "failure_rate",
        "alerts.failure_rate.above",
    ),
    (
        "bad window",
        FLOW,
        "alerts:\n  failure_rate:\n    window: soon\n",
        "window",
        "is not a duration",
    ),
    (
        "bad days",
        FLOW,
        "alerts:\n  silence:\n    days: weekdays\n",
        "days",
        "write days like mon-fri",
    ),
    (
        "bad hours",
        FLOW,
        "alerts:\n  silence:\n    hours: '20:00-08:00'\n",
        "hours",
        "start before end",
    ),
    (
        "unknown time zone",
        FLOW,
        "alerts:\n  silence:\n    timezone: Mars/Olympus\n",
        "timezone",
        "unknown time zone",
    ),
    (
        "undeclared notifier",
        FLOW,
        "alerts:\n  notify:\n    - ops-slack\n    - pagr\n",
        "- pagr",
        "notifier 'pagr' is not declared",
    ),
    (
        "unknown notifier kind",
        HUB,
        "  teams:\n    kind: teams\n    url: https://x\n",
        "kind: teams",
        "unknown notifier kind 'teams'",
    ),
    (
        "notifier without kind",
        HUB,
        "  other:\n    url: https://x\n",
        "other:",
        "notifiers.other.kind is required",
    ),
    (
        "secret written as text",
        HUB,
        "  hook:\n    kind: webhook\n    url: https://x\n    secret: whsec_abc\n",
        "secret: whsec_abc",
        "write secrets as ${VARIABLE}",
    ),
    (
        "missing secret",
        HUB,
        "  hook:\n    kind: webhook\n    url: https://x\n    secret: ${SEAMLINE_TEST_NO_SUCH}\n",
        "SEAMLINE_TEST_NO_SUCH",
        "secret is missing",
    ),
    (
        "mail without recipients",
        HUB,
        "  mail:\n    kind: email\n    host: smtp\n    sender: a@b\n    to: []\n",
        "to: []",
        "notifiers.mail.to: List should have at least 1 item",
    ),
    (
        "both kinds of TLS",
        HUB,
        "  mail:\n    kind: email\n    host: smtp\n    sender: a@b\n    to: [c@d]\n"
        "    tls: true\n    starttls: true\n",
        "mail:",
        "exclude each other",
    ),
]


@pytest.mark.parametrize(
    ("file", "text", "where", "fragment"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_bad_alert_config_is_reported_with_file_and_line(
    project: Path, file: str, text: str, where: str, fragment: str
) -> None:
    # Given one mistake in the alerts of a flow or the notifiers of the hub
    if file == FLOW:
        add_alerts(project, text)
    else:
        with (project / HUB).open("a") as f:
            f.write(text)
    # When the project is checked
    with pytest.raises(ProjectError) as caught:
        load_project(project)
    # Then the problem names the file and the line, and says what is wrong
    problems = [str(p) for p in caught.value.problems]
    matching = [p for p in caught.value.problems if p.file == file and fragment in p.message]
    assert matching, problems
    assert matching[0].line == line_of(project, file, where), problems
    assert all("smtp-password-1" not in p and "whsec_c2Vj" not in p for p in problems)


def test_a_broken_notifier_is_reported_once_not_again_by_each_flow_naming_it(
    project: Path,
) -> None:
    with (project / HUB).open("a") as f:
        f.write("  pagr:\n    kind: slack\n")
    add_alerts(project, "alerts:\n  notify: [pagr]\n")
    with pytest.raises(ProjectError) as caught:
        load_project(project)
    assert [(p.file, p.message) for p in caught.value.problems] == [
        (HUB, "notifiers.pagr.url is required")
    ]


def test_alerts_false_turns_every_rule_of_a_flow_off(project: Path) -> None:
    add_alerts(project, "alerts: false\n")
    (rules,) = FlowRules.of(load_project(project))
    assert not any(getattr(rules.alerts, name).enabled for name in RULES)
