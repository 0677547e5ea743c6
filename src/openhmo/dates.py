"""Calendar arithmetic the plan's rules use: months, their first and last days."""

from __future__ import annotations

import calendar
from datetime import date, timedelta


def first_of_month(day: date) -> date:
    return day.replace(day=1)


def end_of_month(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def first_of_next_month(day: date) -> date:
    return end_of_month(day) + timedelta(days=1)


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the end of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def months_between(start: date, end: date) -> list[date]:
    """The first days of the calendar months from start's month to end's month."""
    out, cursor = [], first_of_month(start)
    while cursor <= end:
        out.append(cursor)
        cursor = first_of_next_month(cursor)
    return out
