"""The failures the sandbox injects: latency, errors, rate limits, empty pages."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass
class Faults:
    """Failures the sandbox injects, read afresh on every request so they can change live.

    Counting is per API instance over authenticated requests on /v1/ paths; 0 turns a
    fault off. Replacing the whole object (`api.faults = Faults(...)`) is atomic; mutating
    fields one by one is fine for tests and demos, which is all this is for.
    """

    latency_s: float = 0.0
    fail_every: int = 0
    fail_status: int = 503
    rate_limit_every: int = 0
    retry_after_s: float = 1.0
    empty_page_every: int = 0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            # bool is an int subclass; True as "every 1st request" would be a silent surprise.
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{field.name} must be a number")
            if field.type == "int" and not isinstance(value, int):
                raise ValueError(f"{field.name} must be an integer")
            if value < 0 or not math.isfinite(value):
                raise ValueError(f"{field.name} must be a finite number >= 0")
            if field.type == "float":
                # JSON and the CLI hand over whole numbers as int; keep to_dict stable.
                setattr(self, field.name, float(value))
        if not 400 <= self.fail_status <= 599:
            raise ValueError("fail_status must be an HTTP error status (400-599)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        """Build from JSON-like data; raises ValueError on unknown keys or bad values."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)}")
        return cls(**data)
