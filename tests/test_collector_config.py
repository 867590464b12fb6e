"""Every file in ``collector-config/`` parses, and each pipeline only names what it defines.

The official Collector cannot run on these machines, so its configs are checked the way
it would check them at start-up: the parts a typo or a forgotten block would break.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from rotel_collector import binary, read_env_file

CONFIG_DIR = Path(__file__).resolve().parent.parent / "collector-config"
YAML_FILES = sorted(CONFIG_DIR.glob("*.yaml")) + sorted(CONFIG_DIR.glob("*.yml"))
SECTIONS = ("receivers", "processors", "exporters", "connectors", "extensions")

# Component types of otelcol-contrib these configs may use (the part before any "/name").
KNOWN_TYPES = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "batch", "filter", "attributes", "resource"},
    "exporters": {"otlp", "otlphttp", "debug", "loadbalancing"},
    "extensions": {"file_storage", "health_check"},
    "connectors": set(),
}


def test_the_directory_holds_what_the_readme_promises():
    names = {p.name for p in CONFIG_DIR.iterdir()}
    assert {"agent.yaml", "gateway.yaml", "gateway-serve.yaml", "rotel.env", "README.md"} <= names
    assert all(p.suffix in (".yaml", ".yml", ".env", ".md") for p in CONFIG_DIR.iterdir())


def test_the_readme_lists_every_config_with_how_to_start_it():
    listed = set(re.findall(r"^\| `([^`]+)` \|", (CONFIG_DIR / "README.md").read_text(), re.M))
    assert listed == {p.name for p in CONFIG_DIR.iterdir() if p.name != "README.md"}


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_pipelines_name_only_defined_components(path: Path):
    config = yaml.safe_load(path.read_text())
    defined = {section: set(config.get(section) or {}) for section in SECTIONS}
    for section, names in defined.items():
        for name in names:
            assert name.split("/", 1)[0] in KNOWN_TYPES[section], f"{path.name}: unknown {section} type {name}"

    service = config["service"]
    assert set(service.get("extensions", [])) <= defined["extensions"]
    pipelines = service["pipelines"]
    assert pipelines
    used = {section: set() for section in SECTIONS}
    for pipeline_name, pipeline in pipelines.items():
        assert pipeline_name.split("/", 1)[0] in ("traces", "metrics", "logs")
        assert pipeline.get("receivers") and pipeline.get("exporters"), pipeline_name
        for section in ("receivers", "processors", "exporters"):
            for name in pipeline.get(section, []):
                assert name in defined[section] | defined["connectors"], (
                    f"{path.name}: pipeline {pipeline_name} names undefined {section[:-1]} {name!r}"
                )
                used[section].add(name)
        processors = pipeline.get("processors", [])
        if "memory_limiter" in processors:  # it must see data first to protect the rest
            assert processors[0] == "memory_limiter", pipeline_name
    for section in ("receivers", "processors", "exporters"):
        assert defined[section] <= used[section], f"{path.name}: {section} defined but unused"

    # Every exporter's persistent queue points at a storage extension that is started.
    for name, exporter in (config.get("exporters") or {}).items():
        storage = ((exporter or {}).get("sending_queue") or {}).get("storage")
        if storage:
            assert storage in defined["extensions"] and storage in service["extensions"], name


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_trubrics_pipeline_survives_outages_and_fans_out(path: Path):
    config = yaml.safe_load(path.read_text())
    exporters = config["exporters"]
    [(name, trubrics)] = [(n, e) for n, e in exporters.items() if n.startswith(("otlphttp", "loadbalancing"))]
    if name.startswith("loadbalancing"):  # to serve workers: every span of a trace to one worker
        assert trubrics["routing_key"] == "traceID" and trubrics["resolver"]
    else:  # to the bridge beside this collector
        assert trubrics["endpoint"].startswith("http://127.0.0.1:")
    assert trubrics["retry_on_failure"]["enabled"] is True
    assert trubrics["sending_queue"]["enabled"] is True
    assert trubrics["sending_queue"]["storage"].startswith("file_storage")
    pipelines = config["service"]["pipelines"].values()
    assert any(name in p["exporters"] for p in pipelines)
    assert any(name not in p["exporters"] for p in pipelines)  # another backend, another pipeline


def test_rotel_env_names_only_real_rotel_settings():
    settings = read_env_file(CONFIG_DIR / "rotel.env")
    help_text = subprocess.run([binary(), "start", "--help"], capture_output=True, text=True,
                               timeout=30, check=True).stdout
    for key in settings:
        assert key.startswith("ROTEL_") and f"[env: {key}=" in help_text, key
    assert settings["ROTEL_OTLP_EXPORTER_PROTOCOL"] == "http"  # its default, grpc, is dropped at once
    assert settings["ROTEL_OTLP_EXPORTER_ENDPOINT"].startswith("http://127.0.0.1:")
