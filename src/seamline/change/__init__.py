"""Safe change: flow tests, flow versions, previews of a change on real traffic."""
