"""One exception type for every user mistake, so the CLI can print it as one line (exit 2)."""


class DrlbenchError(ValueError):
    """Bad input from the user: an unknown name, a malformed file, a wrong shape.

    The message always names what was wrong and what is accepted.
    """


def unknown(kind: str, name: object, accepted) -> DrlbenchError:
    accepted = list(accepted)
    shown = ", ".join(map(str, accepted[:40])) + (" …" if len(accepted) > 40 else "")
    return DrlbenchError(f"unknown {kind} {name!r}; accepted: {shown}")
