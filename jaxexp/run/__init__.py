"""jaxexp.run: see the Layout section of README.md."""
