"""Address: a postal address as the vendor holds it, every part optional."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Final

from pydantic import AfterValidator, Field, WithJsonSchema

from seamline.model.base import Entity

__all__ = ["Address", "CountryCode"]

_COUNTRY: Final = re.compile(r"[A-Z]{2}")


def _country(value: str) -> str:
    if not _COUNTRY.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an ISO 3166-1 alpha-2 country code (2 upper-case letters: BE)"
        )
    return value


CountryCode = Annotated[
    str,
    AfterValidator(_country),
    WithJsonSchema({"type": "string", "pattern": "^[A-Z]{2}$"}),
]
"""An ISO 3166-1 alpha-2 country code: two upper-case ASCII letters ("BE", "US")."""


class Address(Entity):
    """A postal address. Every part is optional; text is kept exactly as the vendor sent it
    (any script, any accents), so a name like "Zoë Ünal-Øster" or "山田 太郎" round-trips."""

    entity: ClassVar[str] = "address"

    name: str | None = Field(None, examples=["Zoë Martens"])
    """Full name of the addressee, as the vendor shows it."""

    first_name: str | None = Field(None, examples=["Zoë"])
    """Given name."""

    last_name: str | None = Field(None, examples=["Martens"])
    """Family name."""

    company: str | None = Field(None, examples=["Brouwerij De Ster"])
    """Company name."""

    line1: str | None = Field(None, examples=["Veldstraat 12"])
    """First address line: street and number."""

    line2: str | None = Field(None, examples=["Bus 3"])
    """Second address line: apartment, suite, floor."""

    city: str | None = Field(None, examples=["Gent"])
    """City or town."""

    region: str | None = Field(None, examples=["Oost-Vlaanderen"])
    """State, province or region, as a name."""

    region_code: str | None = Field(None, examples=["VOV"])
    """State, province or region, as a code (the ISO 3166-2 part after the dash when known)."""

    postal_code: str | None = Field(None, examples=["9000"])
    """Postal or ZIP code, as text (leading zeros kept)."""

    country: str | None = Field(None, examples=["Belgium"])
    """Country, as a name."""

    country_code: CountryCode | None = Field(None, examples=["BE"])
    """Country as an ISO 3166-1 alpha-2 code, upper-case; validated when present."""

    phone: str | None = Field(None, examples=["+32 9 123 45 67"])
    """Phone number at this address, as the vendor holds it."""
