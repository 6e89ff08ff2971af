"""A check's drift, or a check that cannot run, is an alert until a later run is clean."""

from __future__ import annotations

from seamline.observe.alerts import AlertState, CheckStatus, Snapshot, evaluate

COUNTS = {"missing_left": 0, "missing_right": 2, "mismatch": 35, "duplicate": 0}


def test_drift_fires_once_and_resolves_when_a_run_is_clean() -> None:
    drifting = Snapshot([], [], [CheckStatus("stock", 37, COUNTS, None, ("ops",))])
    clean = Snapshot([], [], [CheckStatus("stock", 0, dict.fromkeys(COUNTS, 0), None)])

    first, sent = evaluate(AlertState(), drifting, 1000.0, [])
    again, quiet = evaluate(first, drifting, 1015.0, [])
    clearing, none = evaluate(again, clean, 1030.0, [], resolve_after=60)
    done, resolved = evaluate(clearing, clean, 1100.0, [], resolve_after=60)

    ((event, alert),) = [(n.event, n.alert) for n in sent]
    assert event == "firing" and alert.rule == "drift" and alert.notify == ("ops",)
    assert alert.summary == "check stock: drift on 37 keys (2 missing right, 35 mismatch)"
    assert quiet == [] and none == []
    assert [n.event for n in resolved] == ["resolved"]
    assert not done.firing


def test_a_check_that_cannot_run_is_an_alert_of_its_own() -> None:
    failing = Snapshot([], [], [CheckStatus("orders", 0, {}, "TransientError: erp: refused")])

    _, sent = evaluate(AlertState(), failing, 1.0, [])

    (n,) = sent
    assert n.alert.rule == "check_failed"
    assert n.alert.summary == "check orders could not run: TransientError: erp: refused"
