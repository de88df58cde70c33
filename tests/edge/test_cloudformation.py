"""The exported CloudFormation template passes cfn-lint, plus the checks cfn-lint leaves out
(Lambda@Edge event types, version ARNs, us-east-1, no environment on the edge function)."""

from __future__ import annotations

import json
import subprocess

import pytest
from django.core.management import call_command

from tests.conftest import BIN

EVENT_TYPES = {"viewer-request", "origin-request", "origin-response", "viewer-response"}


@pytest.fixture
def template(edge_routes, tmp_path):
    call_command("edge_export", "--target", "cloudformation", "--out", str(tmp_path))
    path = tmp_path / "cloudformation.json"
    return path, json.loads(path.read_text())


def test_cfn_lint_passes_on_the_exported_template(template):
    path, _ = template
    result = subprocess.run([str(BIN / "cfn-lint"), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_fails_a_broken_template(template, tmp_path):
    """The lint is a real check: a wrong viewer protocol policy is caught."""
    _, data = template
    data["Resources"]["Distribution"]["Properties"]["DistributionConfig"]["DefaultCacheBehavior"][
        "ViewerProtocolPolicy"
    ] = "sometimes-https"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    assert subprocess.run([str(BIN / "cfn-lint"), str(broken)], capture_output=True).returncode != 0


def test_the_template_holds_the_whole_edge(template):
    _, data = template
    resources = data["Resources"]
    types = {name: r["Type"] for name, r in resources.items()}
    assert types["Distribution"] == "AWS::CloudFront::Distribution"
    assert types["EdgeRouterVersion"] == "AWS::Lambda::Version"
    assert types["MinisiteOriginAccessControl"] == "AWS::CloudFront::OriginAccessControl"
    assert types["HotpathApi"] == types["LegacyApi"] == "AWS::ApiGatewayV2::Api"
    assert resources["HotpathApi"]["Properties"]["ProtocolType"] == "HTTP"
    assert resources["OrderQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["OrderDeadLetterQueue", "Arn"]
    }
    trust = resources["EdgeRouterRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert set(trust["Principal"]["Service"]) == {"lambda.amazonaws.com", "edgelambda.amazonaws.com"}
    edge = resources["EdgeRouterFunction"]["Properties"]
    assert "Environment" not in edge, "Lambda@Edge has no environment variables"
    assert edge["Runtime"].startswith("python3.") and edge["Architectures"] == ["x86_64"]
    assertion = data["Rules"]["EdgeFunctionsInUsEast1"]["Assertions"][0]["Assert"]
    assert assertion == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}


def test_every_behaviour_associates_the_numbered_version_on_valid_events(template):
    _, data = template
    config = data["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
    behaviours = [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]
    assert len(config["CacheBehaviors"]) == 24
    associations = [a for b in behaviours for a in b["LambdaFunctionAssociations"]]
    assert associations
    for association in associations:
        assert association["EventType"] in EVENT_TYPES
        assert association["LambdaFunctionARN"] == {"Ref": "EdgeRouterVersion"}  # a version, not $LATEST
    origins = {o["Id"]: o for o in config["Origins"]}
    assert origins["minisite"]["OriginAccessControlId"] == {"Fn::GetAtt": ["MinisiteOriginAccessControl", "Id"]}
    assert origins["hotpath"]["DomainName"]["Fn::Select"][1]["Fn::Split"][1] == {
        "Fn::GetAtt": ["HotpathApi", "ApiEndpoint"]
    }
