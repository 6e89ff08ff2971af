"""The catalog: Product, its Variants (what a SKU names), and a Price for one SKU."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self, TypeAlias

from pydantic import Field, model_validator

from seamline.model.base import AwareDatetime, Entity, ExactDecimal, Id, Sku
from seamline.model.money import Money, check_currency

__all__ = ["Price", "Product", "ProductStatus", "Variant", "WeightUnit"]

ProductStatus: TypeAlias = Literal["active", "draft", "archived"]
WeightUnit: TypeAlias = Literal["g", "kg", "oz", "lb"]

_Weight = Annotated[ExactDecimal, Field(ge=0)]


class Variant(Entity):
    """One sellable version of a product (a size, a colour): what a SKU names."""

    entity: ClassVar[str] = "variant"

    id: Id = Field(examples=["39072856"])
    """The variant's id in the source system."""

    product_id: Id = Field(examples=["632910392"])
    """The id of the product it belongs to."""

    sku: Sku | None = Field(None, examples=["TS-BLK-M"])
    """The SKU; null when the variant has none. Never ''."""

    barcode: str | None = Field(None, examples=["5412345678908"])
    """Barcode (EAN, UPC, ISBN) as text, leading zeros kept."""

    title: str = Field(examples=["Black / M"])
    """The variant's title."""

    price: Money
    """The selling price."""

    compare_at_price: Money | None = None
    """The "was" price shown struck through; null when none."""

    inventory_item_id: Id | None = Field(None, examples=["808950810"])
    """The id its stock is kept under (InventoryLevel's `inventory_item_id`), when separate."""

    weight: _Weight | None = Field(None, examples=["0.25"])
    """Shipping weight in `weight_unit`, exact."""

    weight_unit: WeightUnit | None = Field(None, examples=["kg"])
    """The unit of `weight`: `g`, `kg`, `oz`, `lb`."""

    options: dict[str, str] = Field(default_factory=dict, examples=[{"Colour": "Black"}])
    """The option values that make this variant (option name to value)."""

    @model_validator(mode="after")
    def _one_currency(self) -> Self:
        check_currency(self.price.currency, [("compare_at_price", self.compare_at_price)])
        return self


class Product(Entity):
    """A product in the catalog, with its variants. Events: `product.created`,
    `product.updated`."""

    entity: ClassVar[str] = "product"

    id: Id = Field(examples=["632910392"])
    """The product's id in the source system."""

    title: str = Field(examples=["T-shirt"])
    """The product's title."""

    handle: str | None = Field(None, examples=["t-shirt"])
    """The URL-friendly name in the shop."""

    vendor: str | None = Field(None, examples=["Acme Apparel"])
    """The brand or supplier."""

    product_type: str | None = Field(None, examples=["Shirts"])
    """The product's category, as the source names it."""

    status: ProductStatus = Field(examples=["active"])
    """`active` (for sale), `draft` (not yet), `archived` (no longer)."""

    tags: list[str] = Field(default_factory=list, examples=[["summer", "cotton"]])
    """The source system's tags on the product."""

    variants: list[Variant]
    """Its variants; a product without options has one."""

    created_at: AwareDatetime | None = Field(None, examples=["2024-01-10T08:00:00+01:00"])
    """When the product was created in the source system."""

    updated_at: AwareDatetime | None = Field(None, examples=["2024-05-02T10:05:00+02:00"])
    """When the product was last changed in the source system."""


class Price(Entity):
    """The price of one SKU, for systems that manage prices apart from products."""

    entity: ClassVar[str] = "price"

    sku: Sku = Field(examples=["TS-BLK-M"])
    """The SKU this price is for."""

    price: Money
    """The selling price."""

    compare_at_price: Money | None = None
    """The "was" price shown struck through; null when none."""

    variant_id: Id | None = Field(None, examples=["39072856"])
    """The variant's id in the system the price is for, when known."""

    @model_validator(mode="after")
    def _one_currency(self) -> Self:
        check_currency(self.price.currency, [("compare_at_price", self.compare_at_price)])
        return self
