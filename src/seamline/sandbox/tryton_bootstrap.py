"""The business set-up of a fresh Tryton database, run by `LocalTryton` in Tryton's own venv.

This file is executed as a script by the Tryton venv's interpreter (`python
tryton_bootstrap.py CONFIG DATABASE`), never imported by Seamline: trytond and proteus exist
only in that venv. It mirrors Tryton's `sale/tests/scenario_sale.rst`: a company in EUR (USD
and GBP known too) with the admin as employee, the minimal chart of accounts, a fiscal year
around today with invoice sequences, a payment term, the account category "Goods", a few
countries, and demo products with stock at the warehouse (WH). It prints one JSON line with
the ids a client needs.
"""

# Runs under Tryton's interpreter: proteus and trytond have no types in Seamline's venv.
# mypy: ignore-errors

from __future__ import annotations

import json
import sys
from decimal import Decimal

COUNTRIES = {
    "BE": "Belgium",
    "DE": "Germany",
    "FR": "France",
    "NL": "Netherlands",
    "GB": "United Kingdom",
    "US": "United States",
}
CURRENCIES = ("USD", "GBP")
"""Besides the company's EUR, with the rates Tryton's test tools give them."""
DEMO_PRODUCTS = (("DEMO-1", "Demo mug", "9.90", 100), ("DEMO-2", "Demo T-shirt", "19.90", 50))


def main(config_file: str, database: str) -> None:
    from proteus import Model, config

    config.set_trytond(database=database, config_file=config_file)

    from trytond.modules.account.tests.tools import (
        create_chart,
        create_fiscalyear,
        get_accounts,
    )
    from trytond.modules.account_invoice.tests.tools import (
        create_payment_term,
        set_fiscalyear_invoice_sequences,
    )
    from trytond.modules.company.tests.tools import create_company, get_company
    from trytond.modules.currency.tests.tools import get_currency

    Party = Model.get("party.party")
    create_company(party=Party(name="Seamline Demo"), currency="EUR")
    for code in CURRENCIES:
        get_currency(code)
    company = get_company()
    create_chart(company)

    Employee = Model.get("company.employee")
    User = Model.get("res.user")
    employee_party = Party(name="Admin")
    employee_party.save()
    employee = Employee(party=employee_party, company=company)
    employee.save()
    admin = User(config.get_config().user)
    admin.employees.append(employee)
    admin.employee = employee
    admin.save()

    fiscalyear = set_fiscalyear_invoice_sequences(create_fiscalyear(company))
    fiscalyear.click("create_period")
    term = create_payment_term()
    term.save()

    accounts = get_accounts(company)
    Category = Model.get("product.category")
    goods = Category(name="Goods", accounting=True)
    goods.account_revenue = accounts["revenue"]
    goods.account_expense = accounts["expense"]
    goods.save()

    Country = Model.get("country.country")
    for code, name in COUNTRIES.items():
        Country(name=name, code=code).save()

    Uom = Model.get("product.uom")
    (unit,) = Uom.find([("name", "=", "Unit")])
    Location = Model.get("stock.location")
    (warehouse,) = Location.find([("code", "=", "WH")])
    (storage,) = Location.find([("code", "=", "STO")])
    Template = Model.get("product.template")
    Inventory = Model.get("stock.inventory")
    inventory = Inventory(location=storage)
    for sku, name, price, quantity in DEMO_PRODUCTS:
        template = Template(
            name=name,
            type="goods",
            salable=True,
            default_uom=unit,
            sale_uom=unit,
            list_price=Decimal(price),
            account_category=goods,
        )
        (product,) = template.products
        product.suffix_code = sku
        template.save()
        line = inventory.lines.new()
        line.product = template.products[0]
        line.quantity = quantity
    inventory.save()
    inventory.click("confirm")

    print(
        json.dumps(
            {
                "company": company.id,
                "warehouse": warehouse.id,
                "storage": storage.id,
                "unit": unit.id,
                "category": goods.id,
                "payment_term": term.id,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
