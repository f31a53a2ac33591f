"""The production env template documents every setting the app reads and validates as it stands; nginx
forwards only the two webhooks (syntax checked with a real nginx when one is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from marketbot.settings import Settings, load_settings
from tests.deploy.conftest import ROOT

TEMPLATE = ROOT / ".env.production.template"
NGINX = ROOT / "infra" / "nginx"


def template_values() -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in TEMPLATE.read_text().splitlines() if line and not line.startswith("#")
    )


def test_template_documents_every_setting_by_its_exact_name() -> None:
    text = TEMPLATE.read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    aliases = {field.alias for field in Settings.model_fields.values()}
    assert aliases <= documented, sorted(aliases - documented)
    example = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), flags=re.M))
    assert example <= documented, sorted(example - documented)


def test_every_variable_compose_interpolates_is_in_the_template() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose)) | set(
        re.findall(r"\$\$([A-Z][A-Z0-9_]*)", compose)
    )
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", TEMPLATE.read_text(), flags=re.M))
    assert used - {"MARKETBOT_TAG"} <= documented, sorted(used - documented)


def test_template_validates_and_its_urls_agree_with_the_service_passwords() -> None:
    values = template_values()
    settings = load_settings(
        **{k: v for k, v in values.items() if k in {f.alias for f in Settings.model_fields.values()}}
    )
    assert settings.public_base_url and settings.public_base_url.startswith("https://")
    assert f":{values['POSTGRES_PASSWORD']}@postgres:5432/{values['POSTGRES_DB']}" in values["DATABASE_URL"]
    assert values["DATABASE_URL"].startswith(f"postgresql://{values['POSTGRES_USER']}:")
    assert f":{values['REDIS_PASSWORD']}@redis:6379/" in values["REDIS_URL"]
    assert (
        ".env.production" in (ROOT / ".gitignore").read_text() or ".env" in (ROOT / ".gitignore").read_text()
    )


def test_only_the_webhook_paths_are_proxied() -> None:
    config = (NGINX / "templates" / "marketbot.conf.template").read_text()
    proxied = re.findall(
        r"location = (\S+) \{[^}]*?\{[^}]*\}[^}]*?include /etc/nginx/snippets/proxy-gateway", config
    )
    assert sorted(proxied) == ["/stripe/webhook", "/telegram/webhook"]
    assert "return 404;" in config and "return 301 https://" in config
    assert "client_max_body_size" in config
    assert (
        config.count("proxy_pass") == 0
        and "proxy_pass" in (NGINX / "snippets" / "proxy-gateway.conf").read_text()
    )


def _nginx_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False).stderr
    return tuple(int(p) for p in re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out).groups())  # type: ignore[union-attr]


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (Debian package nginx)")
def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    nginx = shutil.which("nginx")
    assert nginx is not None
    domain = "bot.example.com"
    live = tmp_path / "letsencrypt" / "live" / domain
    live.mkdir(parents=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={domain}",
            "-keyout",
            str(live / "privkey.pem"),
            "-out",
            str(live / "fullchain.pem"),
        ],
        capture_output=True,
        check=True,
    )
    # What the nginx image's template step does (only our variable), then local paths for the mounts, and
    # the upstream's Compose name (resolved at load time) pointed at loopback.
    config = (
        (NGINX / "templates" / "marketbot.conf.template").read_text().replace("${MARKETBOT_DOMAIN}", domain)
    )
    config = config.replace("/etc/letsencrypt", str(tmp_path / "letsencrypt"))
    config = config.replace("/etc/nginx/snippets", str(NGINX / "snippets")).replace(
        "gateway:8080", "127.0.0.1:8080"
    )
    if _nginx_version(nginx) < (1, 25, 1):  # `http2 on;` is newer than this nginx; the image has 1.28
        config = config.replace("    http2 on;\n", "")
    (tmp_path / "marketbot.conf").write_text(config)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path}/body;\n"
        f"  include {tmp_path}/marketbot.conf;\n}}\n"
    )
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
