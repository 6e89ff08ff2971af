"""The generic HTTP connector: Standard Webhooks in, JSON requests out."""
