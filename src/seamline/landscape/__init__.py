"""The landscape: every system and integration (in the hub and outside it), owners and risk."""
