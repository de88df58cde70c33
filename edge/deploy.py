"""Deploys the routes to AWS with boto3: the Lambda@Edge version, the distribution's
behaviours, the mini-site, and an invalidation of what changed.

Idempotent: the Lambda@Edge zip is byte-stable, so unchanged routes find their published
version instead of publishing a new one; the distribution is updated only when the
desired config differs (its digest is kept in a tag, since some CloudFront emulators do
not return Lambda associations); mini-site files are uploaded only when their MD5 differs.
The endpoint comes from AWS_ENDPOINT_URL when set (e.g. a local AWS emulator).
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError
from django.conf import settings

from edge import matcher, selectors
from edge.exporters import cloudfront, lambda_package, minisite

DIGEST_TAG = "edge:config-sha256"
# Lambda@Edge functions live in us-east-1 whatever the shop's region.
EDGE_REGION = "us-east-1"
# How often a new Lambda@Edge version's state is read while it is Pending (5 minutes at most).
VERSION_POLL_SECONDS = 1
# What the routes decide of a distribution; the rest (the shop's own domain and its
# certificate, a WAF web ACL, logging, error pages) is the platform's, and an update keeps it.
MANAGED_KEYS = ("Origins", "DefaultCacheBehavior", "CacheBehaviors", "Comment", "Enabled")


@dataclass
class DeployResult:
    lambda_version_arn: str = ""
    lambda_published: bool = False
    distribution_id: str = ""
    distribution_created: bool = False
    distribution_updated: bool = False
    uploaded: list[str] = field(default_factory=list)
    invalidated: list[str] = field(default_factory=list)
    diff: str = ""

    @property
    def changed(self) -> bool:
        return bool(
            self.lambda_published
            or self.distribution_created
            or self.distribution_updated
            or self.uploaded
            or self.invalidated
        )


def _client(session, service: str, region: str):
    return session.client(service, region_name=region, endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)


def _digest(config: dict) -> str:
    data = {k: v for k, v in config.items() if k != "CallerReference"}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _essentials(config: dict) -> dict:
    """What every CloudFront implementation returns as sent: origins and behaviour targets."""
    keys = ("PathPattern", "TargetOriginId", "CachePolicyId", "OriginRequestPolicyId", "ViewerProtocolPolicy")

    def behaviour(b: dict) -> dict:
        return {k: b.get(k) or None for k in keys}

    return {
        # Each origin's headers by their names alone (the secret's value is not shown): what a
        # deploy missing EDGE_ORIGIN_SECRET would take away. (Not its access control, which moto
        # does not return; `_guards_kept` compares that.)
        "origins": sorted(
            (o["Id"], o["DomainName"], o.get("OriginPath") or "", *_headers(o))
            for o in config["Origins"].get("Items", [])
        ),
        "default": behaviour(config["DefaultCacheBehavior"]),
        "behaviours": [behaviour(b) for b in config.get("CacheBehaviors", {}).get("Items", [])],
        "enabled": config.get("Enabled"),
    }


def _headers(origin: dict) -> list[str]:
    return [
        f"header {name}" for name in sorted(h["HeaderName"] for h in origin.get("CustomHeaders", {}).get("Items", []))
    ]


def _guards_kept(current: dict | None, desired: dict) -> None:
    """A deploy from a machine without the origins' secret (EDGE_ORIGIN_SECRET) or the bucket's
    access control (EDGE_MINISITE_OAC_ID) would take them off the live distribution: every
    origin would then refuse CloudFront (403), a full outage from one missing variable.
    Refused before anything is changed (`edge_deploy --drop-origin-guards` takes them off on
    purpose). A secret rotated keeps its header's name, and passes."""
    if current is None:
        return
    wanted = {o["Id"]: o for o in desired["Origins"].get("Items", [])}
    for origin in current["Origins"].get("Items", []):
        kept = wanted.get(origin["Id"])
        if kept is None:
            continue
        header = cloudfront.ORIGIN_SECRET_HEADER
        if f"header {header}" in _headers(origin) and f"header {header}" not in _headers(kept):
            raise DeployRefused(
                f"The distribution's origin {origin['Id']} carries {header}, the origins' secret, and "
                "EDGE_ORIGIN_SECRET is not set here: deploying would take it off, and every origin would refuse "
                "CloudFront (403). Set EDGE_ORIGIN_SECRET to the origins' secret "
                "(or deploy with --drop-origin-guards to take it off on purpose)."
            )
        if origin.get("OriginAccessControlId") and "S3OriginConfig" in kept and not kept.get("OriginAccessControlId"):
            raise DeployRefused(
                f"The distribution's origin {origin['Id']} uses the bucket's origin access control, and "
                "EDGE_MINISITE_OAC_ID is not set here: deploying would take it off, and the bucket would answer 403. "
                "Set EDGE_MINISITE_OAC_ID to the stack's output EdgeMinisiteOacId "
                "(or deploy with --drop-origin-guards to take it off on purpose)."
            )


def invalidation_path(pattern: str) -> str:
    """An invalidation path covering a pattern (CloudFront allows `*` only at the end)."""
    path = matcher.normalize_pattern(pattern)
    cut = min((i for i in (path.find("*"), path.find("?")) if i >= 0), default=-1)
    return path if cut < 0 else path[:cut] + "*"


def _changed_paths(current: dict | None, desired: dict) -> list[str]:
    def by_pattern(config: dict | None) -> dict:
        if not config:
            return {}
        # The first behaviour of a pattern is the one CloudFront uses (a config of our own has
        # one per pattern); a later one of the same pattern must not stand in for it.
        behaviours: dict = {}
        for b in _essentials(config)["behaviours"]:
            behaviours.setdefault(b["PathPattern"], b)
        return behaviours

    old, new = by_pattern(current), by_pattern(desired)
    paths = {invalidation_path(p) for p in set(old) | set(new) if old.get(p) != new.get(p)}
    if current is not None and _essentials(current)["default"] != _essentials(desired)["default"]:
        paths.add("/*")
    return sorted(paths)


def _publish_lambda(client, zip_bytes: bytes, *, dry_run: bool, say) -> tuple[str, bool]:
    name = settings.EDGE_LAMBDA_FUNCTION
    sha = base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()
    try:
        function = client.get_function(FunctionName=name)["Configuration"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        function = None
    if function is not None:
        versions = []
        for page in client.get_paginator("list_versions_by_function").paginate(FunctionName=name):
            versions += [v for v in page["Versions"] if v["Version"] != "$LATEST" and v["CodeSha256"] == sha]
        if versions:
            latest = max(versions, key=lambda v: int(v["Version"]))
            return latest["FunctionArn"], False
    if dry_run:
        say(f"Would publish a new version of the Lambda@Edge function {name}.")
        return f"arn:aws:lambda:{EDGE_REGION}:000000000000:function:{name}:(new)", True
    if function is None:
        created = client.create_function(
            FunctionName=name,
            Runtime=lambda_package.RUNTIME,
            Role=settings.EDGE_LAMBDA_ROLE_ARN,
            Handler=lambda_package.HANDLER,
            Code={"ZipFile": zip_bytes},
            Description="The shop's edge router (routes baked in).",
            Timeout=5,
            MemorySize=128,
            Publish=True,
        )
        arn, version = created["FunctionArn"], created["Version"]
    else:
        updated = client.update_function_code(FunctionName=name, ZipFile=zip_bytes, Publish=True)
        arn, version = updated["FunctionArn"], updated["Version"]
    # CloudFront needs the numbered version's ARN, never $LATEST or an alias.
    base = arn.rsplit(":", 1)[0] if arn.rsplit(":", 1)[-1] == version else arn
    say(f"Published {base}:{version}.")
    return f"{base}:{version}", True


def _find_distribution(client) -> dict | None:
    for page in client.get_paginator("list_distributions").paginate():
        for item in page.get("DistributionList", {}).get("Items", []) or []:
            if item.get("Comment") == settings.EDGE_DISTRIBUTION_COMMENT:
                return item
    return None


def _tags(client, arn: str) -> dict:
    items = client.list_tags_for_resource(Resource=arn)["Tags"].get("Items", [])
    return {t["Key"]: t.get("Value", "") for t in items}


def _upload_minisite(client, *, dry_run: bool, say) -> list[str]:
    uploaded = []
    bucket = settings.EDGE_MINISITE_BUCKET
    for key, body in minisite.render_minisite().items():
        md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
        try:
            current = client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
                raise
            current = None
        if current == md5:
            continue
        uploaded.append(key)
        if dry_run:
            say(f"Would upload s3://{bucket}/{key}.")
            continue
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="text/html; charset=utf-8",
            CacheControl="public, max-age=60",
        )
        say(f"Uploaded s3://{bucket}/{key}.")
    return uploaded


class DeployRefused(Exception):
    """What the deploy needs and does not have, found before anything is changed."""


def _bucket_check(client) -> None:
    """The mini-site's bucket must exist: the deploy uploads to it, it never creates it (the
    stack does, output EdgeMinisiteBucket). Checked first, so that a missing bucket does not
    leave a distribution made and its pages never uploaded."""
    bucket = settings.EDGE_MINISITE_BUCKET
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchBucket", "NotFound"):
            raise DeployRefused(
                f"The mini-site's bucket {bucket!r} does not exist: create the stack from cloudformation.json "
                "and set EDGE_MINISITE_BUCKET to its output EdgeMinisiteBucket (or create the bucket)."
            ) from None
        raise


def _minisite_api_check(table: dict) -> None:
    """The mini-site's page calls EDGE_HOTPATH_API_URL from the browser. An origin's own domain
    (the stack's HotpathApiUrl, say) is another site than the page's, and answers only the edge:
    it refuses a request without X-Origin-Verify and sends no CORS headers, so every stock read
    and order of the page would fail. Checked before anything is changed."""
    url = settings.EDGE_HOTPATH_API_URL
    host = urlsplit(url).hostname if url else None
    if host and host in {origin["domain"].rstrip(".").lower() for origin in table["origins"].values()}:
        raise DeployRefused(
            f"EDGE_HOTPATH_API_URL ({url}) is the domain of an origin behind the edge: the mini-site's page "
            "cannot call it (it answers only CloudFront, with X-Origin-Verify, and sends no CORS headers). "
            "Leave EDGE_HOTPATH_API_URL empty and route the product's /orders and /stock to the hot path "
            "ahead of the mini-site's route."
        )


def edge_deploy(
    *,
    dry_run: bool = False,
    session=None,
    table: dict | None = None,
    say: Callable[[str], None] = print,
    drop_origin_guards: bool = False,
) -> DeployResult:
    session = session or boto3.Session()
    table = selectors.route_table() if table is None else table
    result = DeployResult()
    lambda_client = _client(session, "lambda", EDGE_REGION)
    cf = _client(session, "cloudfront", EDGE_REGION)
    s3 = _client(session, "s3", settings.AWS_REGION)
    _bucket_check(s3)
    _minisite_api_check(table)
    live = _find_distribution(cf)
    if live is not None and not drop_origin_guards:
        _guards_kept(
            cf.get_distribution_config(Id=live["Id"])["DistributionConfig"],
            cloudfront.distribution_config(
                table, oac_id=settings.EDGE_MINISITE_OAC_ID, origin_secret=settings.EDGE_ORIGIN_SECRET
            ),
        )

    result.lambda_version_arn, result.lambda_published = _publish_lambda(
        lambda_client, lambda_package.build_zip(table), dry_run=dry_run, say=say
    )
    if not dry_run:
        # A version just published is Pending for a while, and CloudFront refuses to associate
        # it until it is Active (InvalidLambdaFunctionAssociation).
        lambda_client.get_waiter("published_version_active").wait(
            FunctionName=settings.EDGE_LAMBDA_FUNCTION,
            Qualifier=result.lambda_version_arn.rsplit(":", 1)[-1],
            WaiterConfig={"Delay": VERSION_POLL_SECONDS, "MaxAttempts": 300 // VERSION_POLL_SECONDS},
        )

    summary = _find_distribution(cf)
    desired = cloudfront.distribution_config(
        table,
        lambda_arn=result.lambda_version_arn,
        comment=settings.EDGE_DISTRIBUTION_COMMENT,
        oac_id=settings.EDGE_MINISITE_OAC_ID,
        origin_secret=settings.EDGE_ORIGIN_SECRET,
    )
    current = etag = None
    if summary is not None:
        result.distribution_id = summary["Id"]
        response = cf.get_distribution_config(Id=summary["Id"])
        current, etag = response["DistributionConfig"], response["ETag"]
        # The caller reference identifies the distribution and can never change.
        desired["CallerReference"] = current["CallerReference"]
    else:
        desired["CallerReference"] = f"shop-edge-{_digest(desired)[:16]}"
    digest = _digest(desired)
    same = (
        current is not None
        and _essentials(current) == _essentials(desired)
        and _tags(cf, summary["ARN"]).get(DIGEST_TAG) == digest
    )
    if not same:
        # The reviewable part: origins and behaviours (associations all point at the one
        # version reported above, and emulators may not return them).
        before = json.dumps(_essentials(current) if current else {}, indent=2).splitlines()
        after = json.dumps(_essentials(desired), indent=2).splitlines()
        result.diff = "\n".join(difflib.unified_diff(before, after, "deployed", "desired", lineterm=""))
        say(result.diff or "Behaviours unchanged; Lambda@Edge associations or settings differ.")
    paths = _changed_paths(current, desired) if not same else []
    if not same and not dry_run:
        tags = {"Items": [{"Key": DIGEST_TAG, "Value": digest}]}
        if current is None:
            created = cf.create_distribution(DistributionConfig=desired)["Distribution"]
            result.distribution_id = created["Id"]
            cf.tag_resource(Resource=created["ARN"], Tags=tags)
            result.distribution_created = True
            say(f"Created distribution {created['Id']}.")
        else:
            config = {**current, **{key: desired[key] for key in MANAGED_KEYS}}
            cf.update_distribution(Id=summary["Id"], IfMatch=etag, DistributionConfig=config)
            cf.tag_resource(Resource=summary["ARN"], Tags=tags)
            result.distribution_updated = True
            say(f"Updated distribution {summary['Id']}.")
    elif same:
        say("The distribution is up to date.")

    result.uploaded = _upload_minisite(s3, dry_run=dry_run, say=say)
    for key in result.uploaded:
        paths.append("/" + key)
        if key.endswith("/index.html"):
            paths.append("/" + key[: -len("index.html")])
    if paths and result.distribution_id and not (result.distribution_created or dry_run):
        paths = sorted(set(paths))
        cf.create_invalidation(
            DistributionId=result.distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": len(paths), "Items": paths},
                "CallerReference": f"edge-{digest[:16]}-{int(time.time())}",
            },
        )
        result.invalidated = paths
        say("Invalidated " + " ".join(paths))
    elif paths and dry_run:
        say("Would invalidate " + " ".join(sorted(set(paths))))
    if dry_run:
        say("Dry run: nothing was changed.")
    elif not result.changed:
        say("Nothing to deploy: everything is up to date.")
    return result
