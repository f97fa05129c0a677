"""CSV for every export of people's own words: cells a spreadsheet reads as text, a line at a time."""

import csv
import io
import itertools
from collections.abc import Iterable, Iterator


def csv_safe(value):
    """`value`, with a leading quote when it is text a spreadsheet would run as a formula."""
    # A cell starting with = + - @ is a formula in a spreadsheet: labels, names and messages are typed by people.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def csv_lines(header: list[str], rows: Iterable[list]) -> Iterator[str]:
    """The header, then each row, as a line of CSV text (for a streaming response); every cell safe to open."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for values in itertools.chain([header], rows):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([csv_safe(value) for value in values])
        yield buffer.getvalue()
