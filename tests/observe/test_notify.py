"""Each notifier delivers to a real receiver on 127.0.0.1; a failing receiver is tried again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from seamline.connectors.http.signature import WebhookVerifier, generate_secret
from seamline.observe.alerts import Alert, Notification
from seamline.observe.notify import NotifyFailed, build_notifier
from seamline.observe.spec import EmailNotifier, SlackNotifier, WebhookNotifier
from seamline.settings import Secret
from tests.observe.receivers import http_receiver, self_signed, smtp_server

ALERT = Alert(
    rule="dead_letters",
    subject="flow:orders-to-erp",
    severity="critical",
    summary="12 dead letters since 21:40",
    since=1_795_000_000.0,
    notify=("ops",),
)
FIRING = Notification("firing", ALERT)


class Waits:
    """Stands in for `asyncio.sleep`: remembers the backoff asked for, waits for nothing."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_the_webhook_notifier_posts_json_signed_as_a_standard_webhook() -> None:
    secret = generate_secret()

    async def case() -> None:
        async with http_receiver() as receiver:
            spec = WebhookNotifier(
                kind="webhook",
                url=receiver.url,
                secret=Secret(secret),
                headers={"x-team": "ops"},
            )
            notifier = build_notifier("pager", spec, hub="shop-eu")
            try:
                await notifier.deliver(FIRING)
                await notifier.deliver(Notification("resolved", ALERT))
            finally:
                await notifier.close()
            first, second = receiver.received
            body = orjson.loads(first.body)
            assert body["type"] == "alert.firing" and body["hub"] == "shop-eu"
            assert body["alert"]["flow"] == "orders-to-erp"
            assert body["alert"]["summary"] == "12 dead letters since 21:40"
            assert orjson.loads(second.body)["type"] == "alert.resolved"
            assert first.headers["content-type"] == "application/json"
            assert first.headers["x-team"] == "ops"
            # The receiver can check who sent it, with the shared secret
            verifier = WebhookVerifier([secret])
            assert verifier.verify(first.headers, first.body) == first.headers["webhook-id"]
            assert first.headers["webhook-id"] != second.headers["webhook-id"]

    run(case())


def test_the_webhook_notifier_without_a_secret_sends_no_signature() -> None:
    async def case() -> None:
        async with http_receiver() as receiver:
            notifier = build_notifier(
                "plain", WebhookNotifier(kind="webhook", url=receiver.url), hub="h"
            )
            await notifier.deliver(FIRING)
            await notifier.close()
            assert "webhook-signature" not in receiver.received[0].headers

    run(case())


@pytest.mark.parametrize("blocks", [True, False])
def test_the_slack_notifier_posts_text_and_optional_blocks(blocks: bool) -> None:
    async def case() -> None:
        async with http_receiver() as receiver:
            spec = SlackNotifier(kind="slack", url=Secret(receiver.url), blocks=blocks)
            notifier = build_notifier("ops-slack", spec, hub="shop-eu")
            await notifier.deliver(FIRING)
            await notifier.close()
            (got,) = receiver.received
            message = orjson.loads(got.body)
            assert message["text"] == (
                "[shop-eu] FIRING critical · flow orders-to-erp: 12 dead letters since 21:40"
            )
            assert ("blocks" in message) is blocks

    run(case())


def test_a_failing_receiver_is_tried_again_with_growing_waits() -> None:
    async def case() -> None:
        # Given a receiver that fails twice, then takes the notification
        async with http_receiver(answers=[503, 500]) as receiver:
            waits = Waits()
            spec = WebhookNotifier(
                kind="webhook",
                url=receiver.url,
                secret=Secret(generate_secret()),
                retries=3,
                backoff=2.0,
            )
            notifier = build_notifier("pager", spec, hub="h", sleep=waits)
            # When a notification is sent
            await notifier.deliver(FIRING)
            await notifier.close()
            # Then it arrives on the third try, after waiting 2 s and then 4 s
            assert len(receiver.received) == 3
            assert waits.asked == [2.0, 4.0]
            # and every try carried the same webhook id, for the receiver to dedupe
            assert len({r.headers["webhook-id"] for r in receiver.received}) == 1

    run(case())


def test_a_notifier_gives_up_after_its_retries_without_showing_its_url() -> None:
    async def case() -> None:
        async with http_receiver(answers=[500] * 10) as receiver:
            spec = SlackNotifier(kind="slack", url=Secret(receiver.url), retries=2, backoff=0.0)
            notifier = build_notifier("ops-slack", spec, hub="h", sleep=Waits())
            with pytest.raises(NotifyFailed) as caught:
                await notifier.deliver(FIRING)
            await notifier.close()
            assert len(receiver.received) == 3
            assert "gave up after 3 tries: answered 500" in str(caught.value)
            assert "token" not in str(caught.value)

    run(case())


def test_a_receiver_that_is_not_there_is_tried_and_given_up_on() -> None:
    async def case() -> None:
        from tests.observe.receivers import free_port

        spec = WebhookNotifier(
            kind="webhook", url=f"http://127.0.0.1:{free_port()}/in", retries=1, backoff=0.0
        )
        notifier = build_notifier("pager", spec, hub="h", sleep=Waits())
        with pytest.raises(NotifyFailed, match="ClientConnectorError"):
            await notifier.deliver(FIRING)
        await notifier.close()

    run(case())


def test_the_email_notifier_sends_a_plain_mail() -> None:
    with smtp_server() as (mailbox, port):
        spec = EmailNotifier(
            kind="email",
            host="127.0.0.1",
            port=port,
            starttls=False,
            sender="hub@example.com",
            to=["oncall@example.com", "ops@example.com"],
        )
        notifier = build_notifier("oncall", spec, hub="shop-eu")
        run(notifier.deliver(FIRING))
    (mail,) = mailbox.messages
    assert mail["Subject"] == (
        "[shop-eu] FIRING critical · flow orders-to-erp: 12 dead letters since 21:40"
    )
    assert mailbox.envelopes == [("hub@example.com", ["oncall@example.com", "ops@example.com"])]
    assert "rule:     dead_letters" in mail.get_payload()


def test_the_email_notifier_uses_starttls_and_logs_in(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with smtp_server(tls=(cert, key), password="smtp-password-1") as (mailbox, port):
        spec = EmailNotifier(
            kind="email",
            host="127.0.0.1",
            port=port,
            username="alerts",
            password=Secret("smtp-password-1"),
            sender="hub@example.com",
            to=["oncall@example.com"],
            ca_file=str(cert),
        )
        notifier = build_notifier("oncall", spec, hub="shop-eu")
        run(notifier.deliver(Notification("resolved", ALERT)))
    (mail,) = mailbox.messages
    assert mail["Subject"].startswith("[shop-eu] RESOLVED critical")
    assert mailbox.logins == ["alerts"]


def test_an_smtp_server_refusing_the_mail_is_retried_then_given_up() -> None:
    with smtp_server() as (mailbox, port):
        spec = EmailNotifier(
            kind="email",
            host="127.0.0.1",
            port=port,
            starttls=False,
            sender="hub@example.com",
            to=["nobody@example.com"],
            retries=1,
            backoff=0.5,
        )
        waits = Waits()
        notifier = build_notifier("oncall", spec, hub="h", sleep=waits)
        with pytest.raises(NotifyFailed, match=r"gave up after 2 tries: .*nobody@example\.com"):
            run(notifier.deliver(FIRING))
    assert waits.asked == [0.5] and mailbox.messages == []
