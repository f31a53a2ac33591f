"""docker-compose.yml: valid against the Compose Specification schema and shaped as docs/deploy.md says.

The schema is the one check-jsonschema ships (`vendor.compose-spec`, the compose-spec project's
compose-spec.json), so the check runs offline; the rest are the promises the schema cannot express.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import ROOT, tool

APP_SERVICES = ["gateway", "worker-interactive", "worker-outbound", "worker-maintenance", "beat", "flower"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_matches_the_compose_specification() -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_nginx_is_public_and_operator_tools_bind_to_loopback(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            if name == "nginx":
                assert port in ("80:80", "443:443")
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert "ports" not in compose["services"]["postgres"] and "ports" not in compose["services"]["redis"]
    assert compose["networks"]["data"]["internal"] is True
    for name in ("postgres", "redis"):
        assert compose["services"][name]["networks"] == ["data"]


def test_app_services_wait_for_a_successful_migration(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["migrate"] and services["migrate"]["restart"] == "no"
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["redis"]
    assert "--appendonly yes" in " ".join(services["redis"]["command"])
    assert any("/var/lib/postgresql/data" in v for v in services["postgres"]["volumes"])


def test_workers_cover_every_queue_once_and_shut_down_warm(compose: dict[str, Any]) -> None:
    from tasks.names import ALL_QUEUES

    queues: list[str] = []
    for name, service in compose["services"].items():
        command = service.get("command")
        if isinstance(command, list) and command[:1] == ["worker"]:
            queues += command[command.index("--queues") + 1].split(",")
            assert service["stop_grace_period"] == "90s" and service["stop_signal"] == "SIGTERM", name
            assert "deploy" not in service or service["deploy"].get("replicas") is None, "scale with --scale"
    assert sorted(queues) == sorted(ALL_QUEUES)
    beats = [n for n, s in compose["services"].items() if s.get("command") == ["beat"]]
    assert beats == ["beat"]


def test_app_services_run_marketbot_subcommands_and_read_the_env_file(compose: dict[str, Any]) -> None:
    from marketbot.cli import build_parser

    parser = build_parser()
    for name in [*APP_SERVICES, "migrate"]:
        service = compose["services"][name]
        assert service["env_file"] == [".env.production"], name
        if name != "flower":  # Flower runs as `celery ... flower` (see the comment in docker-compose.yml)
            # Compose fills ${VAR:-default} from the env file; the defaults must parse too.
            parser.parse_args([re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", arg) for arg in service["command"]])


def test_flower_is_the_marketbot_subcommand_reachable_only_from_the_hosts_loopback(
    compose: dict[str, Any],
) -> None:
    # `marketbot flower` itself refuses to start without FLOWER_BASIC_AUTH (tests/integration/test_cli.py)
    flower = compose["services"]["flower"]
    assert flower["command"] == ["flower"]
    assert flower["environment"]["FLOWER_ADDRESS"] == "0.0.0.0"
    assert all(str(port).startswith("127.0.0.1:") for port in flower["ports"])


def test_monitoring_is_an_optional_profile(compose: dict[str, Any]) -> None:
    for name in ("prometheus", "grafana", "node-exporter"):
        assert compose["services"][name]["profiles"] == ["monitoring"]
    volumes = " ".join(compose["services"]["prometheus"]["volumes"])
    assert "./infra/prometheus" in volumes


def test_images_are_pinned_by_version(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        if image.startswith("${"):
            continue
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest" and any(ch.isdigit() for ch in tag), f"{name}: {image}"
