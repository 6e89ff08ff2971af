"""Notifiers: where a firing or resolved alert is sent. Declared in `seamline.yaml`:

| kind      | sends                                                                       |
|-----------|-----------------------------------------------------------------------------|
| `webhook` | a JSON POST (`alert.firing` / `alert.resolved`); Standard Webhooks signed    |
|           | (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with a `whsec_` key |
| `slack`   | `{"text": ..., "blocks": [...]}` to a Slack-compatible incoming webhook      |
| `email`   | a plain-text mail over SMTP (STARTTLS, or implicit TLS), login if given     |

A send that fails (no connection, a non-2xx answer, an SMTP error) is tried again `retries`
times, waiting `backoff`, then twice as long, and so on; then `deliver` raises `NotifyFailed`,
which the alert loop logs. Secrets (the webhook key, the SMTP password, a Slack URL given as a
reference) never appear in a log line or an error.
"""

from __future__ import annotations

import asyncio
import email.message
import logging
import smtplib
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from seamline.connectors.http.signature import signed_headers
from seamline.observe.spec import (
    EmailNotifier,
    NotifierSpec,
    SlackNotifier,
    WebhookNotifier,
    reveal,
)

if TYPE_CHECKING:
    from seamline.observe.alerts import Notification

log = logging.getLogger("seamline.notify")
Sleep = Callable[[float], Awaitable[None]]


class NotifyFailed(Exception):
    """A notification could not be sent, after every retry."""


def headline(n: Notification) -> str:
    """ "FIRING critical · flow orders-to-erp: 12 dead letters since 21:40"."""
    a = n.alert
    kind, _, name = a.subject.partition(":")
    return f"{n.event.upper()} {a.severity} · {kind} {name}: {a.summary}"


def payload(n: Notification, *, hub: str) -> dict[str, Any]:
    a = n.alert
    return {
        "type": f"alert.{n.event}",
        "hub": hub,
        "alert": {
            "key": a.key,
            "rule": a.rule,
            "subject": a.subject,
            "flow": a.flow,
            "system": a.system,
            "severity": a.severity,
            "summary": a.summary,
            "since": a.since,
            "resolved_at": a.resolved_at,
        },
    }


class Notifier:
    """Sends one notification with retries; subclasses say how one try goes (`_send`)."""

    def __init__(self, name: str, spec: NotifierSpec, *, hub: str, sleep: Sleep = asyncio.sleep):
        self.name = name
        self.spec = spec
        self.hub = hub
        self._sleep = sleep

    async def deliver(self, n: Notification) -> None:
        tries = self.spec.retries + 1
        for attempt in range(1, tries + 1):
            try:
                await self._send(n)
                return
            except Exception as exc:
                reason = _reason(exc)
                if attempt == tries:
                    raise NotifyFailed(
                        f"notifier {self.name} gave up after {tries} tries: {reason}"
                    ) from None
                wait = self.spec.backoff * 2 ** (attempt - 1)
                log.warning(
                    "notifier failed; trying again",
                    extra={
                        "notifier": self.name,
                        "attempt": attempt,
                        "wait": wait,
                        "error": reason,
                    },
                )
                await self._sleep(wait)

    async def _send(self, n: Notification) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections."""


def _reason(exc: BaseException) -> str:
    # aiohttp's errors name the URL, which may carry a token (Slack's do): keep only the kind.
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"answered {exc.status}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = ", ".join(
            f"{to} ({code} {_text(said)})" for to, (code, said) in exc.recipients.items()
        )
        return f"SMTP refused {refused}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, aiohttp.ClientError | OSError | TimeoutError):
        return type(exc).__name__
    return str(exc) or type(exc).__name__


def _text(said: bytes | str) -> str:
    return said.decode("utf-8", "replace") if isinstance(said, bytes) else said


class _HttpNotifier(Notifier):
    spec: WebhookNotifier | SlackNotifier

    def __init__(self, name: str, spec: NotifierSpec, *, hub: str, sleep: Sleep = asyncio.sleep):
        super().__init__(name, spec, hub=hub, sleep=sleep)
        self._session: aiohttp.ClientSession | None = None

    async def _post(self, body: bytes, headers: Mapping[str, str]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.spec.timeout)
            )
        async with self._session.post(
            reveal(self.spec.url),
            data=body,
            headers={"content-type": "application/json", **headers},
        ) as response:
            await response.read()
            if response.status >= 300:
                raise NotifyFailed(f"answered {response.status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class WebhookSender(_HttpNotifier):
    spec: WebhookNotifier

    async def _send(self, n: Notification) -> None:
        body = orjson.dumps(payload(n, hub=self.hub))
        headers = dict(self.spec.headers)
        if self.spec.secret is not None:
            # One id per notification, the same on every retry: the receiver dedupes on it.
            msg_id = f"msg_{n.alert.key}:{n.event}:{n.alert.since:.0f}".replace(" ", "")
            headers |= signed_headers(self.spec.secret.reveal(), msg_id=msg_id, body=body)
        await self._post(body, headers)


class SlackSender(_HttpNotifier):
    spec: SlackNotifier

    async def _send(self, n: Notification) -> None:
        text = f"[{self.hub}] {headline(n)}"
        message: dict[str, Any] = {"text": text}
        if self.spec.blocks:
            a = n.alert
            mark = (
                ":white_check_mark:"
                if n.event == "resolved"
                else (":red_circle:" if a.severity == "critical" else ":large_orange_circle:")
            )
            message["blocks"] = [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"{mark} *{text}*"}},
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": f"rule `{a.rule}` · hub {self.hub}"}],
                },
            ]
        await self._post(orjson.dumps(message), {})


class EmailSender(Notifier):
    """SMTP through the standard library, in a thread (a mail every few minutes at most)."""

    spec: EmailNotifier

    async def _send(self, n: Notification) -> None:
        mail = email.message.EmailMessage()
        mail["Subject"] = f"[{self.hub}] {headline(n)}"
        mail["From"] = self.spec.sender
        mail["To"] = ", ".join(self.spec.to)
        a = n.alert
        lines = [
            headline(n),
            "",
            f"rule:     {a.rule}",
            f"subject:  {a.subject}",
            f"severity: {a.severity}",
            f"since:    {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(a.since))}",
        ]
        if a.resolved_at is not None:
            lines.append(
                f"resolved: {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(a.resolved_at))}"
            )
        lines += ["", f"-- Seamline hub {self.hub}"]
        mail.set_content("\n".join(lines))
        await asyncio.to_thread(self._send_sync, mail)

    def _send_sync(self, mail: email.message.EmailMessage) -> None:
        spec = self.spec
        context = ssl.create_default_context(cafile=spec.ca_file)
        smtp: smtplib.SMTP
        if spec.tls:
            smtp = smtplib.SMTP_SSL(spec.host, spec.port, timeout=spec.timeout, context=context)
        else:
            smtp = smtplib.SMTP(spec.host, spec.port, timeout=spec.timeout)
        with smtp:
            if spec.use_starttls:
                smtp.starttls(context=context)
            if spec.username is not None and spec.password is not None:
                smtp.login(spec.username, spec.password.reveal())
            smtp.send_message(mail)


class RecordingNotifier(Notifier):
    """The fake beside the real ones: keeps what it was given, sends nothing."""

    def __init__(self, name: str = "recording", *, hub: str = "test") -> None:
        spec = WebhookNotifier(kind="webhook", url="http://127.0.0.1/recording")
        super().__init__(name, spec, hub=hub)
        self.sent: list[Notification] = []

    async def _send(self, n: Notification) -> None:
        self.sent.append(n)


def build_notifier(
    name: str, spec: NotifierSpec, *, hub: str, sleep: Sleep = asyncio.sleep
) -> Notifier:
    kinds: dict[type[Any], type[Notifier]] = {
        WebhookNotifier: WebhookSender,
        SlackNotifier: SlackSender,
        EmailNotifier: EmailSender,
    }
    return kinds[type(spec)](name, spec, hub=hub, sleep=sleep)


def build_notifiers(
    specs: Mapping[str, NotifierSpec], *, hub: str, sleep: Sleep = asyncio.sleep
) -> dict[str, Notifier]:
    return {name: build_notifier(name, spec, hub=hub, sleep=sleep) for name, spec in specs.items()}
