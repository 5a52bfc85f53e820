"""docker-compose.yml is checked by compose-go (the loader Docker Compose uses), built from
tools/composecheck with Go; no Docker engine is needed."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from shopstream.config import PROJECT_ROOT

TOOL_DIR = PROJECT_ROOT / "tools" / "composecheck"


@pytest.fixture(scope="module")
def composecheck(tmp_path_factory: pytest.TempPathFactory) -> str:
    go = shutil.which("go")
    assert go, "Go is needed to build tools/composecheck (install golang)"
    binary = tmp_path_factory.mktemp("bin") / "composecheck"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=TOOL_DIR, check=True,
                   capture_output=True, timeout=600)
    return str(binary)


def test_compose_file_is_valid(composecheck):
    result = subprocess.run([composecheck, str(PROJECT_ROOT / "docker-compose.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok: 3 services"


def test_compose_waits_on_healthy_broker_and_finished_topics(composecheck, tmp_path):
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert "condition: service_healthy" in text
    assert "condition: service_completed_successfully" in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace("service_completed_successfully", "service_finished"))
    result = subprocess.run([composecheck, str(broken)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0 and "condition" in result.stderr  # the checker can fail
