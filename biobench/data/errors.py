"""The one error type of the data layer, in its own module so every reader can raise it
without importing the loader (which imports every reader)."""


class DataError(ValueError):
    """Bad or missing data. The message names the file (and line) and what was expected."""
