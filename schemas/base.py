"""What every shopstream event model shares: strictness, the schema version, id types."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from schemas.times import MIN_TS_MS

SCHEMA_VERSION = 1
MAX_ID_CHARS = 256

# Ids are opaque non-empty strings (the data files' integer ids travel as decimal strings).
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
# Epoch milliseconds UTC; the lower bound (2000-01-01) lands in the JSON Schema too.
Timestamp = Annotated[int, Field(ge=MIN_TS_MS, description="epoch milliseconds, UTC")]
NonNegativeInt = Annotated[int, Field(ge=0)]
Price = Annotated[float, Field(ge=0)]


class Event(BaseModel):
    """Base of every event: strict (no coercion), closed (no unknown fields), immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    # A plain strict int, not Literal[1]: pydantic lets ``true`` through a Literal[1].
    # Absent on the wire means 1; any other value is refused as unknown_version.
    schema_version: int = Field(
        default=SCHEMA_VERSION, ge=SCHEMA_VERSION, le=SCHEMA_VERSION,
        description="version of this event's schema; absent means 1",
    )

