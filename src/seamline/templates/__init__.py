"""Files that `seamline init` copies."""
