"""The web console and the REST API: one Starlette app the hub serves behind ingest."""

from seamline.console.app import Console

__all__ = ["Console"]
