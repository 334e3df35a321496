"""deploy/: the KServe manifest asks of cgan-serve only what it has: options it takes, probes on
its endpoints, the port its image listens on (neither file can be built or applied here)."""

from __future__ import annotations

import re

import yaml

from cgan_runtime import DigitGenerator
from cgan_serve.app import build_app
from cgan_serve.batcher import BatchLimits
from cgan_serve.cli import main
from cgan_serve.engine import LocalEngine
from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"


def container() -> dict:
    manifest = yaml.safe_load((DEPLOY / "inference-service.yaml").read_text())
    assert manifest["kind"] == "InferenceService" and manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    (only,) = manifest["spec"]["predictor"]["containers"]
    return only


def image_arguments() -> list[str]:
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)
    command = yaml.safe_load(entrypoint.group(1))
    assert command[0] == "cgan-serve"
    return command[1:]


def test_the_manifests_arguments_are_options_cgan_serve_takes():
    arguments = image_arguments() + container()["args"]
    context = main.make_context("cgan-serve", arguments)  # click refuses an unknown or bad option
    assert context.params["host"] == "0.0.0.0" and context.params["drain_timeout"] == 25


def test_the_probes_are_cgan_serves_endpoints_on_the_images_port():
    spec = container()
    port = int(image_arguments()[image_arguments().index("--port") + 1])
    assert [entry["containerPort"] for entry in spec["ports"]] == [port]
    assert f"EXPOSE {port}" in (DEPLOY / "Dockerfile").read_text()
    app = build_app(LocalEngine(DigitGenerator(device="cpu"), BatchLimits(1, 0, 1)))
    paths = {route.path for route in app.routes}
    for probe in ("readinessProbe", "livenessProbe"):
        assert spec[probe]["httpGet"]["path"] in paths and spec[probe]["httpGet"]["port"] == port
