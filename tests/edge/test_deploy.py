"""`edge_deploy` against moto's server: create, update, idempotent, dry run.

moto drops LambdaFunctionAssociations from what it stores, so the associations are checked
on the requests boto3 sent (recorded by a botocore event hook).
"""

from __future__ import annotations

import os
from io import StringIO

import boto3
import pytest
from botocore.exceptions import ClientError
from django.core.management import call_command
from django.test import override_settings

from edge import services
from edge.deploy import DeployRefused, _changed_paths, edge_deploy, invalidation_path
from edge.models import Origin, Route
from tests.conftest import BIN, free_port, wait_for_port
from tests.edge.conftest import create_routes

MUTATING = {
    "CreateDistribution",
    "UpdateDistribution",
    "CreateFunction",
    "UpdateFunctionCode",
    "PublishVersion",
    "PutObject",
    "CreateInvalidation",
    "TagResource",
}


@pytest.fixture
def moto_server(processes, monkeypatch):
    port = free_port()
    env = {**os.environ, "MOTO_PORT": str(port)}
    process = processes.start([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], env, name="moto")
    wait_for_port(port, process=process)
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return f"http://127.0.0.1:{port}"


class Recorder:
    """Every AWS request a boto3 session makes: (operation, parameters)."""

    def __init__(self):
        self.session = boto3.Session()
        self.calls: list[tuple[str, dict]] = []
        self.session.events.register("provide-client-params", self.record)

    def record(self, params, model, **kwargs):
        self.calls.append((model.name, dict(params)))

    def sent(self, operation: str) -> list[dict]:
        return [p for name, p in self.calls if name == operation]

    def mutations(self) -> set[str]:
        return {name for name, _ in self.calls if name in MUTATING}


@pytest.fixture
def aws(moto_server, db):
    from shop.models import Category, Product

    iam = boto3.client("iam", endpoint_url=moto_server)
    role = iam.create_role(
        RoleName="shop-edge-router",
        AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
        '{"Service":["lambda.amazonaws.com","edgelambda.amazonaws.com"]},"Action":"sts:AssumeRole"}]}',
    )["Role"]
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket="shop-minisite")
    rods = Category.objects.create(name="Rods", slug="rods")
    Product.objects.create(category=rods, title="Muskie Casting Rod", slug="muskie-casting-rod", price_cents=14999)
    create_routes()
    with override_settings(EDGE_LAMBDA_ROLE_ARN=role["Arn"], EDGE_MINISITE_BUCKET="shop-minisite"):
        yield moto_server


def deploy(**kwargs):
    recorder = Recorder()
    result = edge_deploy(session=recorder.session, say=lambda message: None, **kwargs)
    return result, recorder


def test_edge_deploy_creates_then_changes_nothing_on_a_second_run(aws):
    first, sent = deploy()
    assert first.distribution_created and first.lambda_published
    assert first.lambda_version_arn.endswith(":function:shop-edge-router:1")
    assert first.uploaded == ["shop/rods/muskie-casting-rod/index.html"]
    created = sent.sent("CreateDistribution")[0]["DistributionConfig"]
    behaviours = {b["PathPattern"]: b for b in created["CacheBehaviors"]["Items"]}
    assert len(behaviours) == 24
    canary = behaviours["/t/canary/*"]["LambdaFunctionAssociations"]
    assert canary["Quantity"] == 3
    assert {a["LambdaFunctionARN"] for a in canary["Items"]} == {first.lambda_version_arn}
    assert {e["ErrorCode"] for e in created["CustomErrorResponses"]["Items"]} == {500, 502, 503, 504}

    stored = boto3.client("cloudfront").get_distribution_config(Id=first.distribution_id)["DistributionConfig"]
    assert [b["PathPattern"] for b in stored["CacheBehaviors"]["Items"]] == list(behaviours)
    assert stored["CacheBehaviors"]["Items"][0]["TargetOriginId"] == "hotpath"

    second, sent = deploy()
    assert not second.changed, second
    assert sent.mutations() == set(), sent.mutations()
    assert second.distribution_id == first.distribution_id


def test_edge_deploy_updates_behaviours_keeping_the_caller_reference_and_invalidates_what_changed(aws):
    first, _ = deploy()
    caller_reference = boto3.client("cloudfront").get_distribution_config(Id=first.distribution_id)[
        "DistributionConfig"
    ]["CallerReference"]
    services.route_set_enabled(actor="merchant", route=Route.objects.get(name="muskie"), enabled=False)

    updated, sent = deploy()
    assert updated.distribution_updated and updated.lambda_published
    assert updated.lambda_version_arn.endswith(":2")
    call = sent.sent("UpdateDistribution")[0]
    assert call["IfMatch"] and call["Id"] == first.distribution_id
    config = call["DistributionConfig"]
    assert config["CallerReference"] == caller_reference
    assert "/shop/rods/muskie-casting-rod/*" not in [b["PathPattern"] for b in config["CacheBehaviors"]["Items"]]
    assert "/shop/rods/muskie-casting-rod/*" in updated.invalidated
    stored = boto3.client("cloudfront").get_distribution_config(Id=first.distribution_id)["DistributionConfig"]
    assert stored["CacheBehaviors"]["Quantity"] == 23
    again, sent = deploy()
    assert not again.changed and sent.mutations() == set()


class PendingVersions:
    """What moto leaves out of Lambda and CloudFront: a version just published is Pending until
    a while later (here: until its state has been read once), and CloudFront refuses to
    associate a version that is not Active yet."""

    def __init__(self, session):
        self.pending: set[str] = set()
        session.events.register("after-call.lambda.CreateFunction", self.published)
        session.events.register("after-call.lambda.UpdateFunctionCode", self.published)
        session.events.register("after-call.lambda.GetFunctionConfiguration", self.read)
        for operation in ("CreateDistribution", "UpdateDistribution"):
            session.events.register(f"provide-client-params.cloudfront.{operation}", self.associate)

    def published(self, parsed, **kwargs):
        self.pending.add(parsed["Version"])
        parsed["State"] = "Pending"

    def read(self, parsed, **kwargs):
        if parsed.get("Version") in self.pending:
            parsed["State"] = "Pending"
            self.pending.discard(parsed["Version"])

    def associate(self, params, **kwargs):
        config = params["DistributionConfig"]
        behaviours = [config["DefaultCacheBehavior"], *config["CacheBehaviors"].get("Items", [])]
        for association in (a for b in behaviours for a in b["LambdaFunctionAssociations"].get("Items", [])):
            version = association["LambdaFunctionARN"].rsplit(":", 1)[-1]
            if version in self.pending:
                message = f"The function must be in an Active state. The current state for version {version} is Pending"
                error = {"Error": {"Code": "InvalidLambdaFunctionAssociation", "Message": message}}
                raise ClientError(error, kwargs["model"].name)


def test_edge_deploy_waits_for_the_new_version_to_be_active_before_cloudfront_takes_it(aws):
    recorder = Recorder()
    PendingVersions(recorder.session)
    first = edge_deploy(session=recorder.session, say=lambda message: None)
    assert first.distribution_created and first.lambda_version_arn.endswith(":1")
    services.route_set_enabled(actor="merchant", route=Route.objects.get(name="muskie"), enabled=False)
    updated = edge_deploy(session=recorder.session, say=lambda message: None)
    assert updated.distribution_updated and updated.lambda_version_arn.endswith(":2")
    assert [p["Qualifier"] for p in recorder.sent("GetFunctionConfiguration")][-1] == "2"


def test_edge_deploy_keeps_what_the_routes_do_not_decide_the_shops_domain_certificate_and_web_acl(aws):
    first, _ = deploy()
    cloudfront = boto3.client("cloudfront")
    deployed = cloudfront.get_distribution_config(Id=first.distribution_id)
    platform = {
        "Aliases": {"Quantity": 1, "Items": ["shop.example.com"]},
        "ViewerCertificate": {
            "ACMCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d",
            "SSLSupportMethod": "sni-only",
            "MinimumProtocolVersion": "TLSv1.2_2021",
        },
        "WebACLId": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/shop/0a1b2c3d",
    }
    config = {**deployed["DistributionConfig"], **platform}
    cloudfront.update_distribution(Id=first.distribution_id, IfMatch=deployed["ETag"], DistributionConfig=config)
    services.route_set_enabled(actor="merchant", route=Route.objects.get(name="muskie"), enabled=False)

    updated, _ = deploy()
    assert updated.distribution_updated
    stored = cloudfront.get_distribution_config(Id=first.distribution_id)["DistributionConfig"]
    assert "/shop/rods/muskie-casting-rod/*" not in [b["PathPattern"] for b in stored["CacheBehaviors"]["Items"]]
    assert stored["Aliases"] == platform["Aliases"]
    assert stored["ViewerCertificate"]["ACMCertificateArn"] == platform["ViewerCertificate"]["ACMCertificateArn"]
    assert stored["WebACLId"] == platform["WebACLId"]


def test_edge_deploy_refuses_a_minisite_whose_page_would_call_an_origin_behind_the_edge(aws):
    """The stack's HotpathApiUrl answers only CloudFront (X-Origin-Verify) and sends no CORS
    headers: a mini-site page calling it from the browser could place no order."""
    recorder = Recorder()
    api = f"https://{Origin.objects.get(name='hotpath').domain}"
    with override_settings(EDGE_HOTPATH_API_URL=api), pytest.raises(DeployRefused, match="EDGE_HOTPATH_API_URL"):
        edge_deploy(session=recorder.session, say=lambda message: None)
    assert recorder.mutations() == set()
    with override_settings(EDGE_HOTPATH_API_URL="https://shop.example.com"):
        assert edge_deploy(session=recorder.session, say=lambda message: None).distribution_created


def test_edge_deploy_dry_run_prints_the_difference_and_changes_nothing(aws):
    first, _ = deploy()
    services.route_set_enabled(actor="merchant", route=Route.objects.get(name="off"), enabled=True)
    out = StringIO()
    call_command("edge_deploy", "--dry-run", stdout=out)
    text = out.getvalue()
    assert '+      "PathPattern": "/t/off/*",' in text
    assert "Dry run: nothing was changed." in text
    stored = boto3.client("cloudfront").get_distribution_config(Id=first.distribution_id)["DistributionConfig"]
    assert "/t/off/*" not in [b["PathPattern"] for b in stored["CacheBehaviors"]["Items"]]
    versions = boto3.client("lambda").list_versions_by_function(FunctionName="shop-edge-router")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1"]


def test_invalidation_paths_stop_at_the_first_wildcard():
    assert invalidation_path("/shop/rods/muskie-casting-rod/*") == "/shop/rods/muskie-casting-rod/*"
    assert invalidation_path("t/star/*.jpg") == "/t/star/*"
    assert invalidation_path("/t/q/file?.txt") == "/t/q/file*"
    assert invalidation_path("/t/exact") == "/t/exact"


def test_changed_paths_compare_the_behaviour_cloudfront_uses_for_each_pattern():
    """Keyed by pattern, a later behaviour of the same pattern stood in for the first, the one
    CloudFront uses: a deploy that left that one as it was invalidated the pattern anyway."""

    def config(*behaviours: tuple[str, str]) -> dict:
        items = [
            {"PathPattern": p, "TargetOriginId": o, "CachePolicyId": "c", "ViewerProtocolPolicy": "redirect-to-https"}
            for p, o in behaviours
        ]
        default = {"TargetOriginId": "monolith", "CachePolicyId": "c", "ViewerProtocolPolicy": "redirect-to-https"}
        return {
            "Origins": {"Items": []},
            "DefaultCacheBehavior": default,
            "CacheBehaviors": {"Items": items},
        }

    pattern = "/shop/rods/muskie-casting-rod/*"
    current = config((pattern, "hotpath"), (pattern, "monolith"))
    assert _changed_paths(current, config((pattern, "hotpath"))) == []
    assert _changed_paths(current, config((pattern, "monolith"))) == ["/shop/rods/muskie-casting-rod/*"]


def test_edge_deploy_refuses_to_take_the_origins_secret_off_the_live_distribution(aws):
    """Deployed once with EDGE_ORIGIN_SECRET, then from a machine without it: the deploy took
    X-Origin-Verify off every origin, whose servers then refuse CloudFront (403), and the dry
    run said only that associations or settings differ."""
    with override_settings(EDGE_ORIGIN_SECRET="origin-secret-" + "x" * 32):
        first, _ = deploy()
        out = StringIO()
        call_command("edge_deploy", "--dry-run", stdout=out)
        assert "up to date" in out.getvalue()

    recorder = Recorder()
    with override_settings(EDGE_ORIGIN_SECRET=""), pytest.raises(DeployRefused, match="EDGE_ORIGIN_SECRET"):
        edge_deploy(session=recorder.session, say=lambda message: None)
    assert recorder.mutations() == set()
    stored = boto3.client("cloudfront").get_distribution_config(Id=first.distribution_id)["DistributionConfig"]
    headers = [o["CustomHeaders"].get("Items", []) for o in stored["Origins"]["Items"]]
    assert all(h and h[0]["HeaderName"] == "X-Origin-Verify" for h in headers)

    # A secret rotated passes; taking it off on purpose is said so.
    with override_settings(EDGE_ORIGIN_SECRET="rotated-secret-" + "y" * 32):
        assert deploy()[0].distribution_updated
    with override_settings(EDGE_ORIGIN_SECRET=""):
        call_command("edge_deploy", "--drop-origin-guards", stdout=StringIO())
    stored = boto3.client("cloudfront").get_distribution_config(Id=first.distribution_id)["DistributionConfig"]
    assert not any(o["CustomHeaders"].get("Items") for o in stored["Origins"]["Items"])


def test_a_deploy_that_would_take_the_bucket_s_access_control_off_is_refused():
    """The same for the mini-site's origin access control (EDGE_MINISITE_OAC_ID): without it the
    private bucket answers 403. (moto keeps no access control: the check on configurations.)"""
    from edge.deploy import _guards_kept

    def config(**origin) -> dict:
        return {"Origins": {"Quantity": 1, "Items": [{"Id": "minisite", "DomainName": "b.s3", **origin}]}}

    bucket = {"S3OriginConfig": {"OriginAccessIdentity": ""}}
    with pytest.raises(DeployRefused, match="EDGE_MINISITE_OAC_ID"):
        _guards_kept(config(OriginAccessControlId="E2QWRUHEXAMPLE"), config(**bucket))
    _guards_kept(
        config(OriginAccessControlId="E2QWRUHEXAMPLE"), config(OriginAccessControlId="E2QWRUHEXAMPLE", **bucket)
    )
    _guards_kept(config(**bucket), config(OriginAccessControlId="E2QWRUHEXAMPLE", **bucket))  # turned on: fine
    _guards_kept(config(OriginAccessControlId="E2QWRUHEXAMPLE"), config())  # no bucket any more: none to keep
