"""jaxexp.core: see the Layout section of README.md."""
