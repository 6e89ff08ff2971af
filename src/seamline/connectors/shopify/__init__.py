"""Shopify: webhooks in (verified, deduped, decoded to the canonical model), catch-up polling
through the Admin API, and order and inventory operations out. See README.md."""
