"""DateTimeParameter of the knime.extension.parameter double (simplified: ISO strings or
date/datetime objects; `date_format` for developer-given strings; zoneinfo for `timezone`)."""
from __future__ import annotations

import datetime
from typing import Optional

from ._parameter_base import _BaseParameter


class DateTimeParameter(_BaseParameter):
    """A date (or datetime with show_time=True); settings hold ISO strings. Simplified double:
    ISO strings or date/datetime objects (and `date_format` for developer-given strings);
    `timezone` names are attached with zoneinfo."""

    def __init__(self, label: Optional[str] = None, description: Optional[str] = None, default_value=None,
                 validator=None, min_value=None, max_value=None, since_version=None, is_advanced: bool = False,
                 show_date: bool = True, show_time: bool = False, show_seconds: bool = False,
                 show_milliseconds: bool = False, timezone: str = None, date_format: str = None):
        self.show_date, self.show_time = show_date, show_time
        self.show_seconds, self.show_milliseconds = show_seconds, show_milliseconds
        self.timezone, self.date_format = timezone, date_format
        self.min_value = self._to_datetime(min_value, user_input=True)
        self.max_value = self._to_datetime(max_value, user_input=True)
        if not default_value:
            default_value = self.max_value or self.min_value or (
                datetime.datetime.now() if show_time else datetime.date.today())
        elif not isinstance(default_value, (str, datetime.date)):
            raise ValueError(f"Cannot parse default value {default_value}. Please provide a string or datetime object.")
        else:
            default_value = self._to_datetime(default_value, user_input=True)
        super().__init__(label, description, default_value,
                         validator if validator is not None else self._default_validator, since_version, is_advanced)

    def _default_validator(self, value):
        if not value:
            return
        value = self._to_datetime(value)
        if not isinstance(value, datetime.datetime if self.show_time else datetime.date):
            raise TypeError(f"{value} is of type {type(value)}, but should be of type date or datetime.")
        if self.min_value is not None and value < self.min_value:
            raise ValueError(f"{value} is smaller than the minimal value {self.min_value}")
        if self.max_value is not None and value > self.max_value:
            raise ValueError(f"{value} is bigger than the max value {self.max_value}")

    def _to_datetime(self, value, user_input: bool = False):
        if not value:
            return None
        if isinstance(value, datetime.date):
            return value
        if self.date_format and user_input:
            value = datetime.datetime.strptime(value, self.date_format)
        else:
            try:
                value = datetime.datetime.fromisoformat(value[:-1] if value.endswith("Z") else value)
            except ValueError:
                raise ValueError(f"Could not parse {value} to a datetime object. Please provide a string in ISO "
                                 "format or a datetime object.") from None
        if not self.show_time:
            return value.date()
        if self.timezone is not None and value.tzinfo is None:
            from zoneinfo import ZoneInfo
            value = value.replace(tzinfo=ZoneInfo(self.timezone))
        return value

    def _to_dict(self, value):
        if not value:
            return None
        if self.timezone is not None and getattr(value, "tzinfo", None) is not None:
            value = value.replace(tzinfo=None)
        return value.isoformat()

    def _from_dict(self, value):
        return self._to_datetime(value)

    def _extract_schema(self, extension_version=None, dialog_creation_context=None) -> dict:
        return {**super()._extract_schema(), "type": "string", "format": "date-time"}

    def _get_options(self, dialog_creation_context) -> dict:
        return {"format": "date-time", "showDate": self.show_date, "showTime": self.show_time,
                "showSeconds": self.show_seconds, "showMilliseconds": self.show_milliseconds,
                "timezone": self.timezone}
