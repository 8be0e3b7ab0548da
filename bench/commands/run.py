"""`tppbench run` (being written)."""


def register(subparsers):
    return None
