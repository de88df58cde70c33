"""The exported CloudFormation template passes cfn-lint, plus the checks cfn-lint leaves out
(Lambda@Edge event types, version ARNs, us-east-1, no environment on the edge function)."""

from __future__ import annotations

import json
import subprocess

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.conftest import BIN, settings_of_fresh_process

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
    assert types["HotpathApi"] == "AWS::ApiGatewayV2::Api"
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


def test_the_legacy_api_is_private_to_the_vpc_endpoint(template):
    _, data = template
    resources = data["Resources"]
    api = resources["LegacyApi"]
    assert api["Type"] == "AWS::ApiGateway::RestApi"
    assert api["Properties"]["EndpointConfiguration"]["Types"] == ["PRIVATE"]
    deny = next(s for s in api["Properties"]["Policy"]["Statement"] if s["Effect"] == "Deny")
    assert deny["Condition"] == {"StringNotEquals": {"aws:SourceVpce": {"Ref": "LegacyApiVpcEndpointId"}}}
    # No public HTTP API in front of the legacy function any more.
    integrations = [r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Integration"]
    assert [i["Properties"]["IntegrationUri"] for i in integrations] == [{"Fn::GetAtt": ["HotpathFunction", "Arn"]}]
    assert "LegacyApiFunction.Arn" in resources["LegacyApiProxyMethod"]["Properties"]["Integration"]["Uri"]["Fn::Sub"]


def test_every_origin_gets_the_origin_secret_and_the_hot_path_requires_it(template):
    _, data = template
    config = data["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
    for origin in config["Origins"]:
        secret = {"HeaderName": "X-Origin-Verify", "HeaderValue": {"Ref": "OriginSecret"}}
        assert origin["OriginCustomHeaders"] == [secret]
    assert data["Parameters"]["OriginSecret"]["NoEcho"] is True
    env = data["Resources"]["HotpathFunction"]["Properties"]["Environment"]["Variables"]
    assert env["EDGE_ORIGIN_SECRET"] == {"Ref": "OriginSecret"}


def test_an_origin_s_5xx_is_kept_at_the_edge_for_a_second(template):
    _, data = template
    config = data["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
    kept = {e["ErrorCode"]: e["ErrorCachingMinTTL"] for e in config["CustomErrorResponses"]}
    assert kept == {500: 1, 502: 1, 503: 1, 504: 1}


def test_the_functions_get_one_queue_name_real_hosts_and_secrets_by_name_only(template):
    _, data = template
    resources = data["Resources"]
    functions = {
        n: r for n, r in resources.items() if r["Type"] == "AWS::Lambda::Function" and n != "EdgeRouterFunction"
    }
    assert set(functions) == {"HotpathFunction", "LegacyApiFunction", "BeatFunction"}
    for name, function in functions.items():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["ORDERS_QUEUE_URL"] == {"Ref": "OrderQueue"} and "ORDER_QUEUE_URL" not in env, name
        assert env["ALLOWED_HOSTS"] != "*" and "execute-api" in env["ALLOWED_HOSTS"]["Fn::Sub"], name
        tokens = {k: v for k, v in env.items() if k.startswith("LEGACY_API_TOKEN_")}
        assert tokens, name
        for value in tokens.values():
            assert value["Fn::Sub"].startswith("{{resolve:secretsmanager:${AppSecretName}:SecretString:"), name
    legacy = functions["LegacyApiFunction"]["Properties"]["Environment"]["Variables"]
    assert {"LEGACY_API_TOKEN_STOREFRONT", "LEGACY_API_TOKEN_HOTPATH"} <= set(legacy)
    # The card key is every process's but the legacy API's (README): the one place cards are
    # sent in the clear has no use for the key that opens the hot path's sealed cards.
    assert "CARD_ENCRYPTION_KEY" not in legacy
    for name in ("HotpathFunction", "BeatFunction"):
        key = functions[name]["Properties"]["Environment"]["Variables"]["CARD_ENCRYPTION_KEY"]
        assert key["Fn::Sub"].startswith("{{resolve:secretsmanager:${AppSecretName}:SecretString:"), name
    assert (
        "${Distribution.DomainName}"
        in functions["HotpathFunction"]["Properties"]["Environment"]["Variables"]["ALLOWED_HOSTS"]["Fn::Sub"]
    )


def test_an_eventbridge_schedule_runs_the_sweeps_of_the_outbox(template):
    _, data = template
    resources = data["Resources"]
    rule = resources["BeatSchedule"]
    assert rule["Type"] == "AWS::Events::Rule"
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["BeatFunction", "Arn"]}
    assert resources["BeatFunction"]["Properties"]["Handler"] == "config.lambda_beat.lambda_handler"
    permission = resources["BeatInvokePermission"]["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"


def test_the_log_relays_to_the_checkout_bus_and_its_example_rule(template):
    _, data = template
    resources = data["Resources"]
    assert resources["CheckoutBus"]["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-checkout-bus"}
    rule = resources["CheckoutEventsRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "CheckoutBus"}
    assert rule["EventPattern"] == {"detail": {"event": {"meta_data": {"type": ["CHECKOUT"]}}}}
    assert rule["Targets"][0]["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["CheckoutEventsDLQ", "Arn"]}
    # The beat's function runs the relay: it knows the bus and may put events on it.
    beat_env = resources["BeatFunction"]["Properties"]["Environment"]["Variables"]
    assert beat_env["EVENTBRIDGE_BUS_NAME"] == {"Ref": "CheckoutBus"}
    statements = resources["BeatRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert {"Effect": "Allow", "Action": "events:PutEvents", "Resource": {"Fn::GetAtt": ["CheckoutBus", "Arn"]}} in (
        statements
    )


def test_the_beat_sends_buyers_emails_through_the_shops_mail_server(template):
    """The beat function sends the confirmations a worker could not: it is given the mail
    server, its credentials (from the app secret, never in the template) and the shop's address
    for the links, or Django's console would print each email into the logs as sent."""
    _, data = template
    beat_env = data["Resources"]["BeatFunction"]["Properties"]["Environment"]["Variables"]
    assert beat_env["EMAIL_HOST"] == {"Ref": "EmailHost"} and beat_env["SHOP_BASE_URL"] == {"Ref": "ShopBaseUrl"}
    assert beat_env["DEFAULT_FROM_EMAIL"] == {"Ref": "EmailFrom"}
    for name, key in (("EMAIL_HOST_USER", "email_host_user"), ("EMAIL_HOST_PASSWORD", "email_host_password")):
        assert f"SecretString:{key}" in beat_env[name]["Fn::Sub"]
    parameters = data["Parameters"]
    assert parameters["EmailHost"]["MinLength"] == 1
    assert parameters["ShopBaseUrl"]["AllowedPattern"] == "https://.+"


def test_each_function_s_database_statements_are_cancelled_before_the_function_times_out(template):
    """A statement stuck behind a lock is cancelled by PostgreSQL while its function can still
    answer: the hot path's at its deployment's default (5 s), the beat's at 45 s."""
    _, data = template
    resources = data["Resources"]
    hot_path_default = settings_of_fresh_process(
        "settings.DATABASE_STATEMENT_TIMEOUT_MS", unset=("DATABASE_STATEMENT_TIMEOUT_MS",), SHOP_DEPLOYMENT="hotpath"
    )
    for name in ("HotpathFunction", "BeatFunction"):
        properties = resources[name]["Properties"]
        env = properties["Environment"]["Variables"]
        assert env["SHOP_DEPLOYMENT"] == "hotpath", name
        timeout_ms = int(env.get("DATABASE_STATEMENT_TIMEOUT_MS", hot_path_default))
        assert 0 < timeout_ms < properties["Timeout"] * 1000, name


def test_the_functions_keep_their_state_under_tmp_and_share_one_redis(template, tmp_path):
    """/var/task is read-only on Lambda, and the settings create VAR_DIR at import."""
    _, data = template
    resources = data["Resources"]
    assert data["Parameters"]["RedisUrl"]["NoEcho"] is True and "Default" not in data["Parameters"]["RedisUrl"]
    for name in ("HotpathFunction", "LegacyApiFunction", "BeatFunction"):
        env = resources[name]["Properties"]["Environment"]["Variables"]
        assert env["VAR_DIR"].startswith("/tmp/"), name
        assert env["REDIS_URL"] == {"Ref": "RedisUrl"}, name
    # The settings take VAR_DIR from the environment (and create it there, not in the code).
    var_dir = tmp_path / "lambda-tmp" / "shop-var"
    assert settings_of_fresh_process("str(settings.VAR_DIR)", VAR_DIR=str(var_dir)) == str(var_dir)
    assert var_dir.is_dir()


def test_the_order_queue_outlasts_an_order_task_held_by_a_worker(template):
    """A worker holds the message through its countdown, a wait for a slot and the call."""
    _, data = template
    longest = settings_of_fresh_process(
        "settings.ORDERS_RETRY_BACKOFF_MAX + settings.ORDERS_SLOT_WAIT_SECONDS + settings.LEGACY_API_TIMEOUT",
        unset=("ORDERS_RETRY_BACKOFF_MAX", "ORDERS_SLOT_WAIT_SECONDS", "LEGACY_API_TIMEOUT"),
    )
    timeout = data["Resources"]["OrderQueue"]["Properties"]["VisibilityTimeout"]
    assert timeout == 900 and timeout > 2 * longest


def test_the_outputs_give_edge_deploy_the_stacks_own_resources(template):
    """edge_deploy finds the distribution by its comment and publishes to the function, bucket
    and origin access control its settings name: the stack's outputs are those settings."""
    _, body = template
    outputs, resources = body["Outputs"], body["Resources"]
    comment = resources["Distribution"]["Properties"]["DistributionConfig"]["Comment"]

    assert outputs["EdgeDistributionComment"]["Value"] == comment
    assert outputs["EdgeLambdaFunction"]["Value"] == {"Ref": "EdgeRouterFunction"}
    assert outputs["EdgeLambdaRoleArn"]["Value"] == {"Fn::GetAtt": ["EdgeRouterRole", "Arn"]}
    assert outputs["EdgeMinisiteBucket"]["Value"] == {"Ref": "MinisiteBucket"}
    assert outputs["EdgeMinisiteOacId"]["Value"] == {"Fn::GetAtt": ["MinisiteOriginAccessControl", "Id"]}
    for name in ("EdgeDistributionComment", "EdgeLambdaFunction", "EdgeLambdaRoleArn"):
        setting = outputs[name]["Description"].removeprefix("edge_deploy's ")
        assert setting.startswith("EDGE_") and hasattr(settings, setting)


def test_the_hot_path_s_concurrency_and_so_its_database_connections_are_bounded(template):
    """Each hot path instance opens its own connection (CONN_MAX_AGE=0): without reserved
    concurrency a stampede scales it to the account's limit and takes every connection."""
    _, data = template
    parameter = data["Parameters"]["HotpathReservedConcurrency"]
    assert parameter["Type"] == "Number" and parameter["MinValue"] == 1
    assert 1 <= parameter["Default"] <= 100 and "database connections" in parameter["Description"]
    hotpath = data["Resources"]["HotpathFunction"]["Properties"]
    assert hotpath["ReservedConcurrentExecutions"] == {"Ref": "HotpathReservedConcurrency"}


def test_the_drain_and_the_beat_keep_concurrency_no_stampede_can_take(template):
    """Only the hot path reserved concurrency: a stampede and a burst of any other function of
    the account could take the rest, and the legacy API that the workers drain into, or the
    beat that relays the outbox, were throttled. The beat runs one at a time, never two."""
    path, data = template
    parameters, resources = data["Parameters"], data["Resources"]
    legacy = parameters["LegacyApiReservedConcurrency"]
    capacity = settings_of_fresh_process("settings.LEGACY_CAPACITY", unset=("LEGACY_CAPACITY",))
    assert legacy["Type"] == "Number" and legacy["MinValue"] == capacity + 1 <= legacy["Default"]
    assert resources["LegacyApiFunction"]["Properties"]["ReservedConcurrentExecutions"] == {
        "Ref": "LegacyApiReservedConcurrency"
    }
    assert resources["BeatFunction"]["Properties"]["ReservedConcurrentExecutions"] == 1
    invoke = resources["BeatInvokeConfig"]["Properties"]
    assert invoke["FunctionName"] == {"Ref": "BeatFunction"} and invoke["MaximumRetryAttempts"] == 0
    assert invoke["MaximumEventAgeInSeconds"] == 60
    # Lambda keeps 100 of the account's default 1,000 unreserved: the defaults leave room.
    reserved = parameters["HotpathReservedConcurrency"]["Default"] + legacy["Default"] + 1
    assert reserved <= 1000 - 100


def test_the_hot_path_s_api_throttles_to_429_before_the_function_s_concurrency_runs_out(template):
    """Beyond the hot path's reserved concurrency its function is throttled, and API Gateway
    answers a bare 500 (an HTTP API has no gateway responses) that the buy-now page tells as a
    failure. API Gateway's own throttle answers 429 first, which the page asks buyers to wait on."""
    _, data = template
    parameters = data["Parameters"]
    rate = parameters["HotpathThrottleRateLimit"]
    assert rate["Type"] == "Number" and rate["MinValue"] == 1
    # An answer in 100 ms on average: the rate does not outrun the reserved instances.
    assert rate["Default"] <= parameters["HotpathReservedConcurrency"]["Default"] / 0.1
    stage = data["Resources"]["HotpathStage"]["Properties"]
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": {"Ref": "HotpathReservedConcurrency"},
        "ThrottlingRateLimit": {"Ref": "HotpathThrottleRateLimit"},
    }
    page = (settings.BASE_DIR / "shop" / "static" / "shop" / "sale.js").read_text()
    assert "r.status === 429" in page and 'r.headers.get("Retry-After") || "a few"' in page


NAME_KEYS = {"Name", "QueueName", "FunctionName", "RoleName", "BucketName", "TopicName", "TableName"}


def _names(value, found: list) -> list:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in NAME_KEYS:
                found.append(item)
            else:
                _names(item, found)
    elif isinstance(value, list):
        for item in value:
            _names(item, found)
    return found


def test_every_name_the_template_gives_starts_with_the_stack_s(template):
    """A fixed name (the checkout bus, its queues and rule) stopped a second stack in the same
    account and region; the app finds the bus by the name the template passes it."""
    _, data = template
    names = _names([r.get("Properties", {}) for r in data["Resources"].values()], [])
    assert len(names) >= 7
    for name in names:
        assert isinstance(name, dict), name
        if "Fn::Sub" in name:
            assert name["Fn::Sub"].startswith("${AWS::StackName}-"), name
        else:
            assert set(name) == {"Ref"}, name


def _statements(role: dict) -> list[dict]:
    return [s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def test_each_function_has_a_role_of_its_own_with_only_what_its_code_calls(template):
    """One role served the three functions: the legacy API could send orders and put events,
    every function could read the app secret (which CloudFormation resolves at deploy time,
    never the code), and Lambda@Edge could assume it."""
    _, data = template
    resources = data["Resources"]
    roles = {
        name: resources[resources[name]["Properties"]["Role"]["Fn::GetAtt"][0]]
        for name in ("HotpathFunction", "LegacyApiFunction", "BeatFunction", "EdgeRouterFunction")
    }
    assert len({id(role) for role in roles.values()}) == 4, "no two functions share a role"
    for name, role in roles.items():
        services = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]
        edge = name == "EdgeRouterFunction"
        assert set(services) == {"lambda.amazonaws.com"} | ({"edgelambda.amazonaws.com"} if edge else set()), name
    actions = {
        name: sorted(
            a for s in _statements(role) for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        )
        for name, role in roles.items()
    }
    assert actions == {
        "HotpathFunction": [],
        "LegacyApiFunction": [],
        "BeatFunction": ["events:PutEvents", "sqs:GetQueueAttributes", "sqs:SendMessage"],
        "EdgeRouterFunction": [],
    }
    beat = {
        s["Action"] if isinstance(s["Action"], str) else s["Action"][0]: s for s in _statements(roles["BeatFunction"])
    }
    assert beat["sqs:SendMessage"]["Resource"] == {"Fn::GetAtt": ["OrderQueue", "Arn"]}
    assert beat["events:PutEvents"]["Resource"] == {"Fn::GetAtt": ["CheckoutBus", "Arn"]}
    assert "secretsmanager" not in json.dumps([r for r in resources.values() if r["Type"] == "AWS::IAM::Role"])


def test_the_order_queues_keep_messages_longer_than_an_order_waits(template):
    """The order queue had SQS's default retention unstated (cfn-lint I3013); it outlasts an
    order's every wait, and the dead-letter queue, whose messages expire by the time they first
    entered the order queue, keeps them the most SQS allows."""
    path, data = template
    resources = data["Resources"]
    longest_wait = settings_of_fresh_process(
        "settings.ORDERS_RESERVATION_SECONDS + settings.ORDERS_STALL_SECONDS + settings.ORDERS_STILL_PLACING_SECONDS"
        " + settings.ORDERS_MAX_RETRIES * settings.ORDERS_RETRY_BACKOFF_MAX",
        unset=(
            "ORDERS_RESERVATION_SECONDS",
            "ORDERS_STALL_SECONDS",
            "ORDERS_STILL_PLACING_SECONDS",
            "ORDERS_MAX_RETRIES",
            "ORDERS_RETRY_BACKOFF_MAX",
        ),
    )
    retention = resources["OrderQueue"]["Properties"]["MessageRetentionPeriod"]
    dead_letters = resources["OrderDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"]
    assert retention >= 24 * 3600 and longest_wait < retention < dead_letters == 14 * 24 * 3600
    result = subprocess.run(
        [str(BIN / "cfn-lint"), "--include-checks", "I3013", "--", str(path)], capture_output=True, text=True
    )
    assert "I3013" not in result.stdout, result.stdout


def test_the_monolith_is_reached_on_its_load_balancer_s_ports_not_this_machine_s(template, settings):
    """The template names the monolith's domain as a parameter, but kept the port it was
    exported on here (http-only on 8000): CloudFront would call the load balancer there."""
    _, data = template
    config = data["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
    monolith = next(origin for origin in config["Origins"] if origin["Id"] == "monolith")
    assert monolith["DomainName"] == {"Ref": "MonolithDomain"}
    custom = monolith["CustomOriginConfig"]
    assert (custom["HTTPPort"], custom["HTTPSPort"]) == (80, 443)
    assert custom["OriginProtocolPolicy"] == {"Ref": "MonolithProtocol"}
    assert data["Parameters"]["MonolithProtocol"]["Default"] == "https-only"
