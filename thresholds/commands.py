"""Sub-commands (filled in by their issue)."""


def register(subparsers):
    return None
