"""The generation parameters a person may set, and their documented bounds.

Kept apart from the HTTP client so that models and forms can check parameters without
importing `requests` (../shared/reference/aimlapi.md has the bounds).
"""

# Documented bounds of the generation parameters chatsite lets a person set
# (../shared/reference/aimlapi.md). max_tokens is capped by mistral-tiny's 32k context.
PARAMETER_BOUNDS: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.1, 1.0),
    "max_tokens": (1, 32000),
}
_INTEGER_PARAMETERS = {"max_tokens"}


def validate_params(params: dict) -> dict:
    """Check generation parameters against the documented bounds; raise ValueError if off."""
    clean = {}
    for name, value in params.items():
        if name not in PARAMETER_BOUNDS:
            raise ValueError(f"Unknown generation parameter {name!r}.")
        if value is None:
            continue
        low, high = PARAMETER_BOUNDS[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number.")
        if name in _INTEGER_PARAMETERS and value != int(value):
            raise ValueError(f"{name} must be a whole number.")
        if not low <= value <= high:
            raise ValueError(f"{name} must be between {low} and {high}.")
        clean[name] = int(value) if name in _INTEGER_PARAMETERS else value
    return clean
