"""The `tryton` kind: a Tryton ERP over JSON-RPC (sales, parties, products, stock)."""
