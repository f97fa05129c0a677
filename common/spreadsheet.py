"""CSV cells a spreadsheet reads as text, for every CSV export of people's own words."""


def csv_safe(value):
    """`value`, with a leading quote when it is text a spreadsheet would run as a formula."""
    # A cell starting with = + - @ is a formula in a spreadsheet: labels, names and messages are typed by people.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value
