"""The metadata.json beside each model version, validated against the shared contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ModelMetadata(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    version: str
    created_ts: int
    parent_version: str | None = None
    item_ids: list[str] = Field(min_length=2)
    max_len: int = Field(ge=1)
    top_k: int = Field(ge=1)
    dim: int = Field(ge=1)
    event_types: dict[str, int]
    data_fingerprint: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    variants: dict[str, str] = Field(default_factory=lambda: {"fp32": "model.onnx"})
    train: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _padding_first(self) -> ModelMetadata:
        if self.item_ids[0] != "":
            raise ValueError("item_ids[0] must be the padding entry ''")
        if "" in self.item_ids[1:]:
            raise ValueError("item ids after index 0 must be non-empty")
        return self

    @property
    def n_items(self) -> int:
        """Real items (without the padding row)."""
        return len(self.item_ids) - 1


def read_metadata(folder: Path) -> ModelMetadata:
    return ModelMetadata.model_validate_json((Path(folder) / "metadata.json").read_bytes())
