"""The model registry: one folder per version and an atomically replaced CURRENT pointer.

    <dir>/<version>/model.onnx, model.fp16.onnx, model.int8.onnx, item_embeddings.npy,
                    metadata.json, checkpoint.pt, training_curve.png
    <dir>/CURRENT    the name of the version workers should serve

A version is assembled in a hidden temporary folder and renamed into place, so a reader
never sees half a version; CURRENT is written to a temporary file and ``os.replace``d.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

CURRENT = "CURRENT"
METADATA = "metadata.json"
REQUIRED_METADATA = ("version", "item_ids", "max_len", "top_k", "dim", "variants")


class RegistryError(ValueError):
    """A registry folder or version that cannot be used; one line for the user."""


def version_name(fingerprint: str, now: float | None = None) -> str:
    """Sortable by time: ``v20261128-141500-ab12cd`` (UTC, then the data fingerprint)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"v{stamp}-{fingerprint[:6]}"


def staging_dir(registry: Path) -> Path:
    """A fresh hidden folder inside the registry to assemble a version in."""
    registry.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=registry))
    staging.chmod(0o755)  # mkdtemp makes it private; workers may run as another user
    return staging


def publish(staging: Path, registry: Path, name: str, make_current: bool = True) -> Path:
    """Move a staged version into place under ``name`` and, by default, point CURRENT at it."""
    final = registry / name
    if final.exists():
        shutil.rmtree(staging, ignore_errors=True)
        raise RegistryError(f"version {name} already exists in {registry}")
    os.replace(staging, final)
    if make_current:
        set_current(registry, name)
    return final


def set_current(registry: Path, name: str) -> None:
    if not (registry / name / METADATA).is_file():
        raise RegistryError(f"{registry / name} is not a model version (no {METADATA})")
    fd, tmp = tempfile.mkstemp(prefix=".CURRENT-", dir=registry)
    os.fchmod(fd, 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, registry / CURRENT)


def current(registry: Path) -> Path | None:
    """The folder CURRENT names, or None when there is no pointer yet."""
    try:
        name = (registry / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    return registry / name if name else None


def write_metadata(version_dir: Path, metadata: dict[str, Any]) -> None:
    (version_dir / METADATA).write_bytes(
        orjson.dumps(metadata, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))


def read_metadata(version_dir: Path) -> dict[str, Any]:
    path = Path(version_dir) / METADATA
    if not Path(version_dir).is_dir():
        raise RegistryError(f"model folder not found: {version_dir}")
    if not path.is_file():
        raise RegistryError(f"{version_dir} has no {METADATA}: not a model version")
    try:
        meta = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        raise RegistryError(f"{path}: not valid JSON") from None
    missing = [key for key in REQUIRED_METADATA if not isinstance(meta, dict) or key not in meta]
    if missing:
        raise RegistryError(f"{path}: missing {', '.join(missing)}")
    return meta  # type: ignore[no-any-return]
