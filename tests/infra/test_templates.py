"""The infrastructure as code parses, is laid out as azd expects, and passes checkov.

pycep-parser (the Bicep parser checkov itself builds on) reads every template here; checkov runs
from its own virtualenv (`make install` puts it in .tools/checkov, pinned, because its many pins
clash with ours) and must report no failed check, with every skip inline and explained.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from .templates import INFRA, MAIN, ROOT, bicep_files, parse, resource_body

CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".tools" / "checkov" / "bin" / "checkov"))
_SKIP = re.compile(r"#checkov:skip=([A-Z0-9_]+)(?::(.*))?")


@pytest.mark.parametrize("path", bicep_files(), ids=lambda path: str(path.relative_to(INFRA)))
def test_every_template_parses(path: Path):
    template = parse(path)
    assert template["resources"] or template.get("modules"), "declares something"


def test_azd_finds_the_service_and_the_templates():
    azure_yaml = (ROOT / "azure.yaml").read_text()
    assert re.search(r"^services:\n  api:\n", azure_yaml, re.MULTILINE)
    assert re.search(r"^    host: function$", azure_yaml, re.MULTILINE)
    assert re.search(r"^    language: python$", azure_yaml, re.MULTILINE)
    # azd deploys the folder `make package` fills, as is (no build on the server)
    assert re.search(r"^    dist: build/package$", azure_yaml, re.MULTILINE)
    assert re.search(r"^    remoteBuild: false$", azure_yaml, re.MULTILINE)
    assert "run: make package" in azure_yaml
    assert MAIN.is_file() and (INFRA / "main.parameters.json").is_file()
    # the service is found by its tag
    [site] = [
        resource_body(resource)
        for path in bicep_files()
        for resource in parse(path)["resources"].values()
        if resource["type"] == "Microsoft.Web/sites"
    ]
    assert "'azd-service-name': 'api'" in (INFRA / "core" / "functionapp.bicep").read_text()
    assert site["kind"] == "functionapp,linux"


def test_every_module_exists_and_every_required_parameter_is_supplied():
    main = parse(MAIN)
    for name, module in main["modules"].items():
        assert (INFRA / module["detail"]["path"]).is_file(), name
        module_params = parse(INFRA / module["detail"]["path"])["parameters"]
        given = resource_body(module)["params"]
        assert set(given) <= set(module_params), (
            f"{name}: unknown parameters {set(given) - set(module_params)}"
        )
        required = {p for p, spec in module_params.items() if "default" not in spec}
        assert required <= set(given), f"{name}: missing {required - set(given)}"
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(parameters) <= set(main["parameters"]), set(parameters) - set(main["parameters"])
    required = {p for p, spec in main["parameters"].items() if "default" not in spec}
    assert required <= set(parameters), required - set(parameters)


def test_outputs_name_the_app_its_url_and_its_identity():
    outputs = parse(MAIN)["outputs"]
    assert {"AZURE_FUNCTION_APP_NAME", "AZURE_FUNCTION_APP_URL", "AZURE_FUNCTION_APP_PRINCIPAL_ID"} <= set(
        outputs
    )


def test_every_checkov_skip_is_inline_with_its_reason():
    skips = [
        (path.name, match)
        for path in bicep_files()
        for match in _SKIP.finditer(path.read_text())
    ]  # fmt: skip
    assert skips, "this repository does skip some checks; the test must see them"
    for name, match in skips:
        assert match.group(2) and len(match.group(2).strip()) > 20, f"{name}: {match.group(1)} has no reason"


@pytest.fixture(scope="module")
def checkov_report() -> dict:
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed at {CHECKOV}: run `make install` (it builds .tools/checkov)")
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(INFRA),
            "--framework",
            "bicep",
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LOG_LEVEL": "ERROR"},
    )
    assert result.stdout.strip().startswith("{"), result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout)


def test_checkov_reports_no_failed_check(checkov_report: dict):
    summary = checkov_report["summary"]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']})"
        for check in checkov_report["results"]["failed_checks"]
    ]
    assert failed == [] and summary["failed"] == 0
    assert summary["parsing_errors"] == 0
    assert summary["passed"] >= 20, summary
    print(  # the line checkov's own CLI prints, for the record
        f"\ncheckov {summary['checkov_version']}: Passed checks: {summary['passed']}, "
        f"Failed checks: {summary['failed']}, Skipped checks: {summary['skipped']}"
    )


def test_checkov_scanned_every_template_that_declares_resources(checkov_report: dict):
    results = checkov_report["results"]
    scanned = {
        check["file_path"].lstrip("/")
        for kind in ("passed_checks", "failed_checks", "skipped_checks")
        for check in results[kind]
    }
    expected = {
        str(path.relative_to(INFRA))
        for path in bicep_files()
        for resource in parse(path)["resources"].values()
        if not resource["existing"]
        and resource["type"].startswith(
            ("Microsoft.Web/", "Microsoft.Storage/storageAccounts", "Microsoft.KeyVault/")
        )
    }
    assert expected <= scanned, expected - scanned


def test_checkov_saw_each_skip_with_its_reason(checkov_report: dict):
    skipped = checkov_report["results"]["skipped_checks"]
    inline = {match.group(1) for path in bicep_files() for match in _SKIP.finditer(path.read_text())}
    assert {check["check_id"] for check in skipped} == inline
    assert all(check["check_result"].get("suppress_comment") for check in skipped), skipped
