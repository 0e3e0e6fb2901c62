"""checkov's skips, written into the templates (a resource's `Metadata: checkov: skip:`, which
checkov reads), each with its reason; deploy/aws/checkov.sh runs checkov over cdk.out."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnResource
from constructs import IConstruct

Skip = tuple[str, str]  # (check id, why it does not apply)

# Functions that only the deploy invokes (or AWS services, once per event), not a user.
NO_VPC = (
    "CKV_AWS_117",
    "The function calls only AWS APIs (Glue, Athena, S3) and reads nothing in the VPC; inside "
    "it, every call would go through the NAT gateway for no isolation gained.",
)
NO_RESERVED_CONCURRENCY = (
    "CKV_AWS_115",
    "Reserved concurrency is an opt-in setting (SIGNAL_AWS_CATALOG_LAMBDA_RESERVED_CONCURRENCY): "
    "Lambda refuses any reservation that leaves the account under its unreserved minimum, which "
    "a new account with a reduced concurrency quota always would (deploy/README.md).",
)
DEPLOY_TIME_FUNCTION: tuple[Skip, ...] = (
    NO_VPC,
    (
        "CKV_AWS_115",
        "Invoked by CloudFormation a few times per deployment: a reservation would only take "
        "from the account's pool, and a new account's reduced quota refuses any (issue 21, "
        "break 4).",
    ),
    (
        "CKV_AWS_116",
        "CloudFormation invokes this custom-resource handler synchronously and waits for its "
        "answer: a failure fails the deployment, there is no event to dead-letter.",
    ),
)
REGISTER_FUNCTION: tuple[Skip, ...] = (
    NO_VPC,
    NO_RESERVED_CONCURRENCY,
    (
        "CKV_AWS_173",
        "Its environment holds names only (region, database, lake root, workgroup), no secret; "
        "Lambda encrypts it at rest with an AWS managed key.",
    ),
    (
        "CKV_AWS_116",
        "An S3 event the function fails on is retried by EventBridge (4 attempts) and, if it "
        "still fails, repaired by the scheduled `signal-catalog sync`, which registers every "
        "partition of the lake: a lost event costs at most one sync interval.",
    ),
)


LOG_BUCKET: tuple[Skip, ...] = (
    (
        "CKV_AWS_18",
        "This bucket receives access logs; logging its own access would log each delivery, "
        "without end.",
    ),
    (
        "CKV_AWS_21",
        "Log objects are written once and never overwritten; versions would keep nothing more, "
        "and the logs expire by lifecycle.",
    ),
)
NO_CERTIFICATE = (
    "Without SIGNAL_AWS_CERTIFICATE_ARN the load balancer serves HTTP: its DNS name is AWS's "
    "(*.elb.amazonaws.com), for which no certificate can be issued. Give a certificate for a "
    "domain you own and the app serves HTTPS, port 80 only redirecting (deploy/README.md)."
)
HTTP_LISTENER: tuple[Skip, ...] = (("CKV_AWS_2", NO_CERTIFICATE), ("CKV_AWS_103", NO_CERTIFICATE))
PUBLIC_HTTP_PORT: Skip = (
    "CKV_AWS_260",
    "The internet-facing load balancer serves users on port 80 (HTTP without a certificate, "
    "the redirect to HTTPS with one); the tasks accept traffic only from it.",
)
CDK_HANDLER_ENV = (
    "CKV_AWS_173",
    "CDK's own handler: its environment holds no secret (names only) and Lambda encrypts it "
    "at rest with an AWS managed key.",
)
# CDK's singleton handlers (construct path fragment -> skips): they run only while CloudFormation
# deploys, invoked synchronously by it; aws-cdk-lib owns their code and configuration.
CDK_HANDLERS: dict[str, tuple[Skip, ...]] = {
    "BucketNotificationsHandler": DEPLOY_TIME_FUNCTION,
    "Custom::CDKBucketDeployment": (*DEPLOY_TIME_FUNCTION, CDK_HANDLER_ENV),
}


def apply(app: IConstruct) -> None:
    """Record the skips of CDK's own deploy-time functions, wherever the app has them."""
    for construct in app.node.find_all():
        if not isinstance(construct, CfnResource) or construct.cfn_resource_type != (
            "AWS::Lambda::Function"
        ):
            continue
        for fragment, skips in CDK_HANDLERS.items():
            if fragment in construct.node.path:
                skip(construct, *skips)


def skip(construct: IConstruct, *skips: Skip) -> None:
    """Record `skips` on the CloudFormation resource of `construct` (itself or its default
    child), merged with any it already has."""
    resource: Any = construct.node.default_child or construct
    metadata: dict[str, Any] = resource.cfn_options.metadata or {}
    entries = list(metadata.get("checkov", {}).get("skip", []))
    known = {entry["id"] for entry in entries}
    entries += [{"id": rule, "comment": why} for rule, why in skips if rule not in known]
    resource.cfn_options.metadata = {**metadata, "checkov": {"skip": entries}}
