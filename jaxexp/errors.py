"""Errors that the CLI turns into a one-line message and a non-zero exit."""


class ConfigError(ValueError):
    """Bad user input: the message names the field and the fix, on one line."""


class DataError(ConfigError):
    """Bad data file or array (wrong shape, NaN, missing column)."""
