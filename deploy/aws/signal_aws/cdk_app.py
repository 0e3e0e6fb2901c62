"""The CDK app: `python -m signal_aws.cdk_app` (or `./pants run deploy/aws:synth`) writes the
templates to cdk.out; `cdk deploy --all --app cdk.out` deploys them (see deploy/README.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk

from signal_aws import checkov, nag
from signal_aws.images import missing_pex_files
from signal_aws.settings import DeploySettings, repo_root
from signal_aws.stacks.catalog import CatalogStack
from signal_aws.stacks.data import DataStack
from signal_aws.stacks.monitoring import MonitoringStack
from signal_aws.stacks.processing import BundleMissingError, ProcessingStack
from signal_aws.stacks.producer import ProducerStack
from signal_aws.stacks.services import ServicesStack


def build(settings: DeploySettings, outdir: Path | None = None) -> cdk.App:
    """The app with every stack (nothing synthesized yet), validated by cdk-nag at synthesis:
    granular findings that match a documented reason are acknowledged (see signal_aws.nag)."""
    granular = nag.probe(lambda tmp: _compose(settings, tmp, None))
    return _compose(settings, outdir, granular)


def _compose(
    settings: DeploySettings,
    outdir: Path | None,
    granular: dict[str, list[nag.Finding]] | None,
) -> cdk.App:
    # the one context value the stacks would look up, given here: synthesis stays offline
    zones_key = f"availability-zones:account={settings.account}:region={settings.region}"
    context = {
        zones_key: settings.zones,
        # S3 log delivery is granted by a bucket policy, not the legacy log-delivery ACL
        "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    }
    app = cdk.App(outdir=str(outdir) if outdir else None, context=context)
    cdk.Validations.of(app).add_plugins(*nag.plugins())
    env = cdk.Environment(account=settings.account, region=settings.region)
    name = settings.prefix.title().replace("-", "")
    data = DataStack(app, f"{name}Data", settings=settings, env=env)
    processing = ProcessingStack(app, f"{name}Processing", settings=settings, data=data, env=env)
    v = settings.versions
    services = ServicesStack(
        app,
        f"{name}Services",
        settings=settings,
        data=data,
        env=env,
        synthesizer=_tagged(f"metrics-api-{v['metrics-api']}-dashboard-{v['dashboard']}-"),
    )
    CatalogStack(
        app,
        f"{name}Catalog",
        settings=settings,
        data=data,
        services=services,
        env=env,
        synthesizer=_tagged(f"catalog-manager-{v['catalog-manager']}-"),
    )
    ProducerStack(
        app,
        f"{name}Producer",
        settings=settings,
        data=data,
        env=env,
        synthesizer=_tagged(f"producer-{v['producer']}-"),
    )
    MonitoringStack(
        app,
        f"{name}Monitoring",
        settings=settings,
        data=data,
        processing=processing,
        services=services,
        env=env,
    )
    cdk.Tags.of(app).add("project", "signal-stream")
    nag.apply(app, granular)
    checkov.apply(app)
    return app


def _tagged(prefix: str) -> cdk.DefaultStackSynthesizer:
    """A synthesizer whose image tags start with the services' versions (then the content
    hash), so ECR shows which version each image is."""
    return cdk.DefaultStackSynthesizer(docker_tag_prefix=prefix)


def main(argv: list[str] | None = None) -> int:
    """Synthesize every stack into cdk.out (or the directory given)."""
    args = sys.argv[1:] if argv is None else argv
    outdir = Path(args[0]) if args else repo_root() / "cdk.out"
    try:
        assembly = build(DeploySettings(), outdir).synth()
    except BundleMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # cdk-nag (or another validation) refused the app
        reason = " ".join(str(exc).split())[:300]
        print(f"error: the app failed validation: {reason}", file=sys.stderr)
        return 1
    for stack in assembly.stacks:
        print(f"{stack.stack_name}: {outdir / stack.template_file}")
    for target in missing_pex_files():
        print(
            f"warning: {target} is not packaged; run `./pants package {target}` and synthesize "
            "again before `cdk deploy` (its image copies the pex)",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
