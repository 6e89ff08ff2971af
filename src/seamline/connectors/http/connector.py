"""The `http` kind: any system that signs Standard Webhooks to us, or takes JSON requests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from seamline.connectors.base import Poller, Reader, Sink, Source
from seamline.settings import Duration, Secret, SecretRef, Strict

CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


class HttpOptions(Strict):
    """`connection:` of an `http` system. The source half and the sink half are both optional."""

    model_config = Strict.model_config | {"arbitrary_types_allowed": True}

    # As a source of Standard Webhooks.
    secrets: list[SecretRef] = Field(default_factory=list)
    """Signing secrets (`whsec_...`); more than one during a rotation."""
    tolerance: Duration = 300.0
    event_field: str = "type"
    data_field: str = "data"
    keys: dict[str, str] = Field(default_factory=dict)
    """Business keys for search: name -> path in the event data (`order: order_number`)."""
    events: list[str] = Field(default_factory=list)
    """Event names this system sends; flows may subscribe only to these when given."""
    enumerations: dict[str, list[str]] = Field(default_factory=dict)
    """Closed value sets in the event data, by path; value maps must cover them."""

    # As a target.
    base_url: str | None = None
    headers: dict[str, str | SecretRef] = Field(default_factory=dict)
    timeout: Duration = 10.0
    idempotent: bool = False
    """True if the target applies a repeated `Idempotency-Key` once; then an unknown outcome
    (a timeout after the request left) is retried, otherwise it waits for review."""

    @field_validator("headers")
    @classmethod
    def _credentials_are_secrets(cls, headers: dict[str, str | Secret]) -> dict[str, str | Secret]:
        for name, value in headers.items():
            lowered = name.lower()
            credential = lowered in CREDENTIAL_HEADERS or any(
                word in lowered for word in ("token", "secret", "key")
            )
            if credential and isinstance(value, str):
                raise ValueError(
                    f"header {name} carries credentials: write it as ${{VARIABLE}} "
                    "or {file: path}"
                )
        return headers

    @model_validator(mode="after")
    def _url(self) -> HttpOptions:
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return self


class RequestOperation(Strict):
    """`target.options` of a flow whose target is an `http` system, operation `request`."""

    method: Literal["POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str = "/"
    """Appended to base_url; `{field}` is filled from the mapped body (`/orders/{order_id}`)."""
    refs: dict[str, str] = Field(default_factory=dict)
    """Cross-references to keep: entity -> path in the JSON response (`order: id`)."""


class HttpConnector:
    kind: ClassVar[str] = "http"
    options: ClassVar[type[BaseModel]] = HttpOptions
    operations: ClassVar[Mapping[str, type[BaseModel]]] = {"request": RequestOperation}
    default_budget: ClassVar[Mapping[str, Any]] = {}

    def enumerations(self, options: BaseModel) -> Mapping[str, Sequence[str]]:
        assert isinstance(options, HttpOptions)
        return options.enumerations

    def source(self, name: str, options: BaseModel) -> Source:
        from seamline.connectors.http.source import HttpSource

        assert isinstance(options, HttpOptions)
        return HttpSource(name, options)

    def sink(self, name: str, options: BaseModel) -> Sink:
        from seamline.connectors.http.sink import HttpSink

        assert isinstance(options, HttpOptions)
        return HttpSink(name, options)

    def poller(self, name: str, options: BaseModel) -> Poller | None:
        return None  # webhooks only

    def reader(self, name: str, options: BaseModel) -> Reader | None:
        return None  # a generic endpoint has no listing to read

    def check(
        self, options: BaseModel, *, role: Literal["source", "target"]
    ) -> list[tuple[str, str]]:
        assert isinstance(options, HttpOptions)
        if role == "source" and not options.secrets:
            return [
                (
                    "which has no webhook secrets",
                    'add connection.secrets: ["${VARIABLE}"] with the whsec_ signing secret',
                )
            ]
        if role == "target" and options.base_url is None:
            return [("which has no base_url", "add connection.base_url")]
        return []
