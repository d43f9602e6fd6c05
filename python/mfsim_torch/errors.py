"""The capture's one error type."""


class CaptureError(Exception):
    """Bad input: one clear line for the user (the command line prints it and exits with 2)."""
