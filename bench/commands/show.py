"""`tppbench show` (being written)."""


def register(subparsers):
    return None
