"""Built-in behaviour, shipped as ordinary plugins that an operator can block by name."""
