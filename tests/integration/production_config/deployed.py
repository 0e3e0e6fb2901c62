"""What the deploy runs, read from the synthesized CloudFormation templates: every ECS container
and Lambda function of the app, with the command its image runs, the environment it receives
(the image's ENV, then the template's) and its secrets (resolved to test values).

Nothing here is a hand-kept list of services: the templates name the containers and functions,
their image assets lead to the staged Dockerfiles, the Dockerfiles to the pex and its entry point
(the pex_binary in the service's BUILD file), and the entry point's package to its settings class
(a subcommand's subpackage adds its own: `signal-api alerts` reads signal_api.alerts' delivery
settings too).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import json
import pkgutil
import re
import shlex
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic_settings import BaseSettings

from signal_aws.images import IMAGES, ImageSpec
from signal_aws.settings import repo_root

# Variables an image sets for its own machinery, not a service setting: consumed by pex (its
# cache directory) and by Python (the Lambda image's unpacked venv). Locally the entry point
# runs on the resolve's interpreter, so neither is passed on.
IMAGE_PLUMBING = {
    "PEX_ROOT": "pex's cache directory (the image runs a pex)",
    "PYTHONPATH": "the Lambda image's venv of the unpacked pex",
}

Template = dict[str, Any]


class DeployReadError(AssertionError):
    """The templates say something this reading cannot follow (a test failure, not a skip)."""


# --- Dockerfiles ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dockerfile:
    """The instructions of a Dockerfile that decide what its container runs."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: dict[str, str]
    copies: dict[str, str]  # source in the context -> destination in the image


def _instructions(text: str) -> Iterator[tuple[str, str]]:
    """(KEYWORD, arguments) of each instruction, continuation lines joined, comments dropped."""
    logical: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if logical and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            logical.append(line[:-1].strip())
            continue
        logical.append(line)
        keyword, _, rest = " ".join(part for part in logical if part).partition(" ")
        logical = []
        yield keyword.upper(), rest.strip()


def _exec_form(arguments: str) -> tuple[str, ...]:
    if arguments.startswith("["):
        return tuple(json.loads(arguments))
    return ("/bin/sh", "-c", arguments)


def parse_dockerfile(text: str) -> Dockerfile:
    """The ENTRYPOINT, CMD, ENV and COPY instructions (the last ENTRYPOINT/CMD wins)."""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: dict[str, str] = {}
    copies: dict[str, str] = {}
    for keyword, arguments in _instructions(text):
        if keyword == "ENTRYPOINT":
            entrypoint, cmd = _exec_form(arguments), ()  # a new ENTRYPOINT resets CMD
        elif keyword == "CMD":
            cmd = _exec_form(arguments)
        elif keyword == "ENV":
            tokens = shlex.split(arguments)
            if tokens and "=" not in tokens[0]:  # legacy `ENV KEY value`
                env[tokens[0]] = " ".join(tokens[1:])
            else:
                env.update(token.split("=", 1) for token in tokens)  # type: ignore[arg-type]
        elif keyword == "COPY":
            paths = [t for t in shlex.split(arguments) if not t.startswith("--")]
            for source in paths[:-1]:
                copies[source] = paths[-1]
    return Dockerfile(entrypoint, cmd, env, copies)


# --- pex entry points ----------------------------------------------------------------------------
def pex_entry_point(repo: Path, target: str) -> str:
    """The `entry_point` of the pex_binary `target` ("dir:name"), read from its BUILD file."""
    directory, _, name = target.partition(":")
    build = repo / directory / "BUILD"
    for node in ast.walk(ast.parse(build.read_text("utf-8"))):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "pex_binary"):
            continue
        kwargs = {k.arg: k.value for k in node.keywords if k.arg}
        named = kwargs.get("name")
        if isinstance(named, ast.Constant) and named.value == name:
            entry = kwargs.get("entry_point")
            if isinstance(entry, ast.Constant) and isinstance(entry.value, str):
                return entry.value
    raise DeployReadError(f"no pex_binary {name!r} with an entry_point in {build}")


def settings_class(module: str) -> type[BaseSettings]:
    """The one pydantic-settings class of the service whose package holds `module`."""
    package = module.split(".")[0]
    settings_module = importlib.import_module(f"{package}.settings")
    found = [
        value
        for value in vars(settings_module).values()
        if isinstance(value, type)
        and issubclass(value, BaseSettings)
        and value.__module__ == settings_module.__name__
    ]
    if len(found) != 1:
        names = [c.__name__ for c in found]
        raise DeployReadError(f"{settings_module.__name__} has settings classes {names}, not one")
    return found[0]


def setting_names(cls: type[BaseSettings]) -> set[str]:
    """Every environment variable name the settings class reads (upper case)."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, info in cls.model_fields.items():
        names.add(f"{prefix}{name}".upper())
        for alias in (info.alias, info.validation_alias):
            if isinstance(alias, str):
                names.add(alias.upper())
    return names


def subcommand_settings(module: str, arguments: tuple[str, ...]) -> tuple[type[BaseSettings], ...]:
    """The settings classes of the subpackage a command's first argument names, beside the
    service's own: `signal-api alerts evaluate` runs signal_api.alerts, whose `*settings`
    modules (delivery_settings) define what it reads besides signal_api.settings."""
    if not arguments or not arguments[0].isidentifier():
        return ()
    package = f"{module.split('.')[0]}.{arguments[0]}"
    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None:
        return ()
    found: list[type[BaseSettings]] = []
    for info in pkgutil.iter_modules(spec.submodule_search_locations):
        if not info.name.endswith("settings"):
            continue
        settings_module = importlib.import_module(f"{package}.{info.name}")
        found += [
            value
            for value in vars(settings_module).values()
            if isinstance(value, type)
            and issubclass(value, BaseSettings)
            and value.__module__ == settings_module.__name__
        ]
    return tuple(found)


# --- CloudFormation values -----------------------------------------------------------------------
class Resolver:
    """Concrete values for the intrinsic functions of env values and secret references, as
    CloudFormation would give them: names the templates set stay; generated names are derived
    from the logical id (and are what the local stand-ins are created with)."""

    def __init__(self, templates: dict[str, Template], *, region: str, account: str) -> None:
        self.templates = templates
        self.region = region
        self.account = account
        self.exports: dict[str, tuple[str, Any]] = {}
        for stack, template in templates.items():
            for output in template.get("Outputs", {}).values():
                export = output.get("Export", {}).get("Name")
                if isinstance(export, str):
                    self.exports[export] = (stack, output["Value"])

    def resource(self, stack: str, logical: str) -> dict[str, Any]:
        try:
            return dict(self.templates[stack]["Resources"][logical])
        except KeyError:
            raise DeployReadError(f"{stack} has no resource {logical}") from None

    def physical_name(self, stack: str, logical: str) -> str:
        """What `Ref` of a resource returns."""
        resource = self.resource(stack, logical)
        kind, props = resource["Type"], resource.get("Properties", {})
        generated = re.sub(r"[^a-z0-9-]", "-", f"{stack}-{logical}".lower())[:63].strip("-")
        if kind == "AWS::S3::Bucket":
            return self.value(stack, props["BucketName"]) if "BucketName" in props else generated
        if kind == "AWS::SecretsManager::Secret":
            return f"arn:aws:secretsmanager:{self.region}:{self.account}:secret:{logical}-AbCdEf"
        if kind == "AWS::Glue::Database":
            return self.value(stack, props["DatabaseInput"]["Name"])
        if kind == "AWS::SNS::Topic":
            topic = self.value(stack, props["TopicName"]) if "TopicName" in props else generated
            return f"arn:aws:sns:{self.region}:{self.account}:{topic}"
        for key in ("Name", "RoleName", "FunctionName", "StreamName", "ClusterName"):
            if key in props:
                return self.value(stack, props[key])
        return generated

    def attribute(self, stack: str, logical: str, attribute: str) -> str:
        """What `Fn::GetAtt` of a resource returns (ARNs in the documented shapes)."""
        kind = self.resource(stack, logical)["Type"]
        name = self.physical_name(stack, logical)
        service = kind.split("::")[1].lower()
        if attribute == "Arn":
            if kind == "AWS::IAM::Role":
                return f"arn:aws:iam::{self.account}:role/{name}"
            if kind == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{name}"
            return f"arn:aws:{service}:{self.region}:{self.account}:{name}"
        return f"{name}.{attribute}"

    def value(self, stack: str, node: Any) -> str:
        """The string a template value becomes at deploy time."""
        if isinstance(node, str):
            return node
        if isinstance(node, bool | int | float):
            return json.dumps(node)
        if not isinstance(node, dict) or len(node) != 1:
            raise DeployReadError(f"{stack}: cannot read the value {node!r}")
        ((function, argument),) = node.items()
        if function == "Ref":
            return self._pseudo(argument) or self.physical_name(stack, argument)
        if function == "Fn::GetAtt":
            logical, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.attribute(stack, logical, attribute)
        if function == "Fn::Join":
            separator, parts = argument
            return str(separator).join(self.value(stack, part) for part in parts)
        if function == "Fn::Select":
            index, items = argument
            return self.value(stack, items[int(index)])
        if function == "Fn::ImportValue":
            name = self.value(stack, argument)
            if name not in self.exports:
                raise DeployReadError(f"{stack} imports {name!r}, which no stack exports")
            exporter, exported = self.exports[name]
            return self.value(exporter, exported)
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(stack, m.group(1), variables), text)
        raise DeployReadError(f"{stack}: intrinsic {function} is not read here")

    def _sub(self, stack: str, name: str, variables: dict[str, Any]) -> str:
        if name in variables:
            return self.value(stack, variables[name])
        pseudo = self._pseudo(name)
        if pseudo is not None:
            return pseudo
        if "." in name:
            logical, attribute = name.split(".", 1)
            return self.attribute(stack, logical, attribute)
        return self.physical_name(stack, name)

    def _pseudo(self, name: str) -> str | None:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }.get(name)


# --- secrets -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SecretRef:
    """A secret an ECS container receives: the Secrets Manager secret and its JSON key."""

    stack: str
    logical_id: str
    json_key: str | None

    def describe(self) -> str:
        return f"{self.logical_id}" + (f":{self.json_key}" if self.json_key else "")


def secret_ref(resolver: Resolver, stack: str, value_from: Any) -> SecretRef:
    """Which secret (and JSON key) an ECS `ValueFrom` names: `arn[:json-key:stage:version]`,
    as the ECS developer guide ("Pass Secrets Manager secrets through Amazon ECS environment
    variables") documents it."""
    resolved = resolver.value(stack, value_from)
    for candidate_stack, template in resolver.templates.items():
        for logical, resource in template["Resources"].items():
            if resource["Type"] != "AWS::SecretsManager::Secret":
                continue
            arn = resolver.physical_name(candidate_stack, logical)
            if resolved == arn or resolved.startswith(arn + ":"):
                json_key = resolved[len(arn) + 1 :].split(":")[0] if resolved != arn else ""
                return SecretRef(candidate_stack, logical, json_key or None)
    raise DeployReadError(f"{stack}: secret {resolved!r} is no secret of the app")


def secret_test_value(resolver: Resolver, ref: SecretRef) -> str:
    """The secret's value at first deploy, with test values for what Secrets Manager
    generates: a literal SecretString is used as is (so the service starts with exactly what
    a fresh deploy gives it); a generated one is a fixed test string of the generator's length
    and alphabet."""
    props = resolver.resource(ref.stack, ref.logical_id).get("Properties", {})
    if "SecretString" in props:
        text = resolver.value(ref.stack, props["SecretString"])
    else:
        generator = props.get("GenerateSecretString", {})
        length = int(generator.get("PasswordLength", 32))
        alphabet = string.ascii_letters + string.digits
        if not generator.get("ExcludePunctuation", False):
            alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
        seed = hashlib.sha256(ref.logical_id.encode()).digest()
        generated = "".join(alphabet[seed[i % len(seed)] % len(alphabet)] for i in range(length))
        if "GenerateStringKey" in generator:
            template = json.loads(generator.get("SecretStringTemplate", "{}"))
            text = json.dumps({**template, generator["GenerateStringKey"]: generated})
        else:
            text = generated
    if ref.json_key is None:
        return text
    document = json.loads(text)
    if ref.json_key not in document:
        raise DeployReadError(f"secret {ref.logical_id} has no JSON key {ref.json_key!r}")
    return str(document[ref.json_key])


# --- units ---------------------------------------------------------------------------------------
# service: behind a load balancer; worker: an ECS service without one (the alert evaluator);
# task: run on a schedule or on demand; function: a Lambda function
Kind = Literal["service", "worker", "task", "function"]


@dataclass(frozen=True)
class Unit:
    """One thing the deploy runs: an ECS container or a Lambda function."""

    stack: str
    name: str
    kind: Kind
    image: str  # key of signal_aws.images.IMAGES
    entry_point: str  # module:function of the pex, or the Lambda handler's dotted path
    command: tuple[str, ...]  # what the image runs, as the Dockerfile and the template say
    arguments: tuple[str, ...]  # the part of the command after the pex / handler
    environment: dict[str, str]  # the image's ENV, then the template's (its values win)
    template_environment: frozenset[str]  # the names the template itself sets
    secrets: dict[str, SecretRef]
    settings: type[BaseSettings]
    port: int | None = None  # container port behind a target group
    health_path: str | None = None  # that target group's health check path
    health_codes: str | None = None
    cloud_map_name: str | None = None  # "<service>.<namespace>" when the service registers
    # the container health check's arguments after the pex it runs (ECS runs it in the
    # container: "CMD", the image's pex, arguments), None without one
    health_arguments: tuple[str, ...] | None = None
    event_pattern: dict[str, Any] | None = field(default=None, hash=False)
    # what a subcommand's subpackage reads besides `settings` (subcommand_settings)
    more_settings: tuple[type[BaseSettings], ...] = ()

    @property
    def id(self) -> str:
        return f"{self.stack}/{self.name}"

    @property
    def all_settings(self) -> tuple[type[BaseSettings], ...]:
        """Every settings class the unit's command reads."""
        return (self.settings, *self.more_settings)

    def setting_names(self) -> set[str]:
        """Every environment variable name the unit's settings classes read."""
        return {name for cls in self.all_settings for name in setting_names(cls)}


def _image_assets(assembly_dir: Path) -> dict[str, Path]:
    """Image tag -> staged build context of every Docker image asset."""
    found: dict[str, Path] = {}
    for manifest in assembly_dir.glob("*.assets.json"):
        for asset in json.loads(manifest.read_text("utf-8")).get("dockerImages", {}).values():
            context = assembly_dir / asset["source"]["directory"]
            for destination in asset["destinations"].values():
                found[destination["imageTag"]] = context
    return found


def _image_of(context: Path) -> tuple[str, ImageSpec, Dockerfile]:
    """Which of signal_aws.images.IMAGES a staged context is (its Dockerfile is the image's)."""
    staged = (context / "Dockerfile").read_text("utf-8")
    for name, spec in IMAGES.items():
        if (repo_root() / spec.dockerfile).read_text("utf-8") == staged:
            return name, spec, parse_dockerfile(staged)
    raise DeployReadError(f"the image context {context} is none of signal_aws.images.IMAGES")


def _pex_command(
    spec: ImageSpec, docker: Dockerfile, overriding: list[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The container's command (ENTRYPOINT + the template's Command or the image's CMD) and
    its arguments after the pex, which must be what ENTRYPOINT runs."""
    pex_in_image = docker.copies.get(spec.pex)
    if pex_in_image is None:
        raise DeployReadError(f"{spec.dockerfile} does not COPY {spec.pex}")
    arguments = tuple(overriding) if overriding is not None else docker.cmd
    command = docker.entrypoint + arguments
    runner = list(docker.entrypoint)
    if runner and Path(runner[0]).name.startswith("python"):
        runner = runner[1:]
    if runner != [pex_in_image]:
        raise DeployReadError(
            f"{spec.dockerfile}: ENTRYPOINT {list(docker.entrypoint)} does not run the pex "
            f"{pex_in_image} (the only form read here)"
        )
    return command, arguments


def _health_arguments(
    spec: ImageSpec, docker: Dockerfile, check: dict[str, Any] | None
) -> tuple[str, ...] | None:
    """The arguments a container health check passes to the image's pex (the only form read
    here: ["CMD", <the pex ENTRYPOINT runs>, ...]); None when the container has no check."""
    if check is None:
        return None
    command = list(check["Command"])
    pex_in_image = docker.copies.get(spec.pex)
    if command[:2] != ["CMD", pex_in_image]:
        raise DeployReadError(
            f"{spec.dockerfile}: health check {command} does not run the pex {pex_in_image}"
        )
    return tuple(command[2:])


@dataclass(frozen=True)
class _Reading:
    """What reading one unit needs: the templates, the image assets, the repository."""

    templates: dict[str, Template]
    assets: dict[str, Path]
    repo: Path
    resolver: Resolver

    def image(self, stack: str, name: str, node: Any) -> tuple[str, ImageSpec, Dockerfile]:
        """The image a container's Image or a function's ImageUri names."""
        tag = self.resolver.value(stack, node).rsplit(":", 1)[-1]
        if tag not in self.assets:
            raise DeployReadError(f"{stack}/{name}: image {tag} is no asset of the app")
        return _image_of(self.assets[tag])


def derive_units(
    templates: dict[str, Template], assembly_dir: Path, repo: Path, resolver: Resolver
) -> list[Unit]:
    """Every ECS container definition and every image-based Lambda function of the app."""
    reading = _Reading(templates, _image_assets(assembly_dir), repo, resolver)
    units: list[Unit] = []
    for stack, template in templates.items():
        for logical, resource in template["Resources"].items():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::ECS::TaskDefinition":
                for container in props["ContainerDefinitions"]:
                    units.append(_container_unit(reading, stack, logical, container))
            elif resource["Type"] == "AWS::Lambda::Function" and "ImageUri" in props.get(
                "Code", {}
            ):
                units.append(_function_unit(reading, stack, logical, props))
    return units


def _container_unit(
    reading: _Reading, stack: str, task_logical: str, container: dict[str, Any]
) -> Unit:
    resolver, template = reading.resolver, reading.templates[stack]
    image, spec, docker = reading.image(stack, container["Name"], container["Image"])
    command, arguments = _pex_command(spec, docker, container.get("Command"))
    template_env = {
        e["Name"]: resolver.value(stack, e["Value"]) for e in container.get("Environment", [])
    }
    secrets = {
        s["Name"]: secret_ref(resolver, stack, s["ValueFrom"]) for s in container.get("Secrets", [])
    }
    entry_point = pex_entry_point(reading.repo, spec.target)
    balanced = _load_balancer_of(template, task_logical, container["Name"])
    port = health_path = codes = cloud_map = None
    if balanced is not None:
        port, target_group, service_logical = balanced
        tg_props = template["Resources"][target_group]["Properties"]
        health_path = tg_props.get("HealthCheckPath", "/")
        codes = tg_props.get("Matcher", {}).get("HttpCode", "200")
        cloud_map = _cloud_map_name(template, service_logical, resolver, stack)
    kind: Kind = "service" if balanced is not None else "task"
    if balanced is None and _services_of(template, task_logical):
        kind = "worker"
    module = entry_point.split(":")[0]
    return Unit(
        stack=stack,
        name=container["Name"],
        kind=kind,
        image=image,
        entry_point=entry_point,
        command=command,
        arguments=arguments,
        environment={**docker.env, **template_env},
        template_environment=frozenset(template_env),
        secrets=secrets,
        settings=settings_class(module),
        port=port,
        health_path=health_path,
        health_codes=codes,
        cloud_map_name=cloud_map,
        health_arguments=_health_arguments(spec, docker, container.get("HealthCheck")),
        more_settings=subcommand_settings(module, arguments),
    )


def _services_of(template: Template, task_logical: str) -> list[str]:
    """The ECS services that run this task definition (none for scheduled/on-demand tasks)."""
    return [
        logical
        for logical, resource in template["Resources"].items()
        if resource["Type"] == "AWS::ECS::Service"
        and resource["Properties"].get("TaskDefinition") == {"Ref": task_logical}
    ]


def _load_balancer_of(
    template: Template, task_logical: str, container: str
) -> tuple[int, str, str] | None:
    """(container port, target group, ECS service) when an ECS service of this task definition
    puts this container behind a target group."""
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::ECS::Service":
            continue
        props = resource["Properties"]
        if props.get("TaskDefinition") != {"Ref": task_logical}:
            continue
        for balancer in props.get("LoadBalancers", []):
            if balancer["ContainerName"] == container:
                return int(balancer["ContainerPort"]), balancer["TargetGroupArn"]["Ref"], logical
    return None


def _cloud_map_name(
    template: Template, service_logical: str, resolver: Resolver, stack: str
) -> str | None:
    """The DNS name an ECS service registers in its Cloud Map namespace (`api.<namespace>`)."""
    props = template["Resources"][service_logical]["Properties"]
    for registry in props.get("ServiceRegistries", []):
        discovery = registry["RegistryArn"]["Fn::GetAtt"][0]
        sd_props = template["Resources"][discovery]["Properties"]
        namespace = sd_props["NamespaceId"]["Fn::GetAtt"][0]
        ns_name = resolver.value(stack, template["Resources"][namespace]["Properties"]["Name"])
        return f"{resolver.value(stack, sd_props['Name'])}.{ns_name}"
    return None


def _function_unit(reading: _Reading, stack: str, logical: str, props: dict[str, Any]) -> Unit:
    resolver = reading.resolver
    image, _spec, docker = reading.image(stack, logical, props["Code"]["ImageUri"])
    image_config = props.get("ImageConfig", {})
    handler_command = tuple(image_config.get("Command") or docker.cmd)
    if len(handler_command) != 1:
        raise DeployReadError(f"{stack}/{logical}: handler {handler_command} is not one name")
    template_env = {
        name: resolver.value(stack, value)
        for name, value in props.get("Environment", {}).get("Variables", {}).items()
    }
    handler = handler_command[0]
    return Unit(
        stack=stack,
        name=logical,
        kind="function",
        image=image,
        entry_point=handler,
        command=handler_command,
        arguments=(),
        environment={**docker.env, **template_env},
        template_environment=frozenset(template_env),
        secrets={},
        settings=settings_class(handler),
        event_pattern=_event_pattern_of(reading.templates[stack], logical, resolver, stack),
    )


def _event_pattern_of(
    template: Template, function_logical: str, resolver: Resolver, stack: str
) -> dict[str, Any] | None:
    """The EventBridge pattern of the rule that targets the function, values resolved."""

    def resolved(node: Any) -> Any:
        if isinstance(node, list):
            return [resolved(item) for item in node]
        if (
            isinstance(node, dict)
            and len(node) == 1
            and next(iter(node)).startswith(("Ref", "Fn::"))
        ):
            return resolver.value(stack, node)
        if isinstance(node, dict):
            return {key: resolved(item) for key, item in node.items()}
        return node

    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Events::Rule":
            continue
        for target in resource["Properties"].get("Targets", []):
            arn = target.get("Arn", {})
            if isinstance(arn, dict) and arn.get("Fn::GetAtt", [None])[0] == function_logical:
                return dict(resolved(resource["Properties"]["EventPattern"]))
    return None


def lake_bucket_and_prefix(uri: str) -> tuple[str, str]:
    """(bucket, key prefix) of an s3:// URI."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3":
        raise DeployReadError(f"{uri} is not an s3:// URI")
    return parsed.netloc, parsed.path.strip("/")
