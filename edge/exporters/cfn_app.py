"""The application's side of the CloudFormation template: the hot path, the legacy API and
the beat as Lambda functions, their API Gateway APIs and EventBridge schedule, the order
queue, the functions' IAM roles (one each) and the checkout bus. `cloudformation.template`
places these resources beside the edge's.

- The legacy API is a PRIVATE REST API: reachable only through the VPC's execute-api
  endpoint (its resource policy denies every other source), never from the internet or
  through CloudFront. Its callers keep `Authorization: Bearer` for their tokens, which
  IAM authorisation (SigV4 in that same header) would have taken.
- The sweeps the beat runs elsewhere (outbox relay, stalled orders, reservations, sale
  windows) run every minute in a Lambda (`config.lambda_beat`) invoked by an EventBridge
  schedule; the Celery workers that place orders run outside this template, without beat.
- The functions' code directory (/var/task) is read-only: their VAR_DIR, which the settings
  create at import, is under /tmp. Their cache (throttles, capacity gates, the legacy API's
  capacity, read models) is the Redis of RedisUrl, shared by every instance.
- The order queue's visibility timeout (ORDER_VISIBILITY_TIMEOUT) outlasts any order task a
  worker holds, its retry countdown included, or a running order is delivered twice.
- The legacy API tokens (`manage.py legacy_api_token CALLER`), the card key and the mail
  server's credentials are read from one Secrets Manager secret named by AppSecretName,
  resolved by CloudFormation. The beat sends the buyers' confirmations a worker could not,
  through EmailHost.
"""

from __future__ import annotations

from events import aws as events_aws


def _trust(*services: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": list(services)}, "Action": "sts:AssumeRole"}],
    }


# The application's functions are plain Lambda functions; only the edge router's role is also
# assumed by Lambda@Edge, which runs it in CloudFront's regions.
LAMBDA_TRUST = _trust("lambda.amazonaws.com")
EDGE_LAMBDA_TRUST = _trust("lambda.amazonaws.com", "edgelambda.amazonaws.com")
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
VPC_ACCESS = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
LEGACY_STAGE = "api"
# Lambda's only writable directory is /tmp.
LAMBDA_VAR_DIR = "/tmp/shop-var"  # noqa: S108 - Lambda's own scratch space, one instance each
# Seconds: a worker holds an order's message through its retry countdown (at most
# ORDERS_RETRY_BACKOFF_MAX, 60 s, or the legacy API's Retry-After), a wait for a capacity
# slot (ORDERS_SLOT_WAIT_SECONDS, 30 s) and the call (LEGACY_API_TIMEOUT, 10 s), with room
# to spare; the same figure as the README's. SQS allows up to 12 hours.
ORDER_VISIBILITY_TIMEOUT = 900
# Seconds an order's message is kept in the queue: 4 days, far beyond what an order waits
# (retries of 2 to 4 minutes, ORDERS_STILL_PLACING_SECONDS and ORDERS_STALL_SECONDS of 5 each,
# an unworked reservation's ORDERS_RESERVATION_SECONDS of 15, a sale's backlog of hours) and
# beyond a weekend without workers; SQS's default is the same figure, now stated (cfn-lint
# I3013). The dead-letter queue keeps its messages the most SQS allows, 14 days: a message
# expires by the time it first entered the order queue, so it must outlast this.
ORDER_MESSAGE_RETENTION = 4 * 24 * 3600
DEAD_LETTER_RETENTION = 14 * 24 * 3600
# The hot path's instances at most (HotpathReservedConcurrency's default): each holds one
# PostgreSQL connection while it answers (CONN_MAX_AGE=0), so a stampede that scaled it to
# the account's limit would take the connections the storefront, the workers and the legacy
# API share. Sized for a server with a few hundred connections; set it to what is left.
HOTPATH_RESERVED_CONCURRENCY = 50
# The legacy API's instances kept for it (LegacyApiReservedConcurrency's default): the drain
# places orders through it, so a stampede on the hot path and a burst of any other function of
# the account must never take them. Its order capacity (LEGACY_CAPACITY, 4) and its holds,
# stock reads and pings fit well inside; beyond it, calls are throttled like the capacity
# gate's 503s, and the workers retry them.
LEGACY_API_RESERVED_CONCURRENCY = 20
LEGACY_API_MIN_CONCURRENCY = 5
# The beat's sweeps run one at a time: one instance, always there and never two. An
# invocation that finds it still busy is dropped (the next minute's runs them), not queued
# by Lambda for hours (BeatInvokeConfig).
BEAT_RESERVED_CONCURRENCY = 1
# Requests a second the hot path's API lets through (HotpathThrottleRateLimit's default), its
# burst being HotpathReservedConcurrency: beyond them API Gateway answers 429 itself, which the
# buy-now page tells as "please wait" (sale.js). A throttled function would be a bare 500 (an
# HTTP API has no gateway responses to change it), which the page takes for a failure. Sized
# for an answer in 100 ms on average, so the throttle comes before the concurrency's limit.
HOTPATH_THROTTLE_RATE_LIMIT = 10 * HOTPATH_RESERVED_CONCURRENCY
HOTPATH_DOMAIN = "${HotpathApi}.execute-api.${AWS::Region}.amazonaws.com"
LEGACY_DOMAIN = "${LegacyApi}.execute-api.${AWS::Region}.amazonaws.com"


def _secret(key: str) -> dict:
    """A value of the AppSecretName secret, resolved by CloudFormation (never in the template)."""
    return {"Fn::Sub": f"{{{{resolve:secretsmanager:${{AppSecretName}}:SecretString:{key}}}}}"}


def _app_role(statements: list[dict]) -> dict:
    """A role of one function: logs, its network interfaces in the VPC, and `statements`.

    Nothing reads Secrets Manager at run time: CloudFormation resolves the AppSecretName
    references into the functions' environment when it deploys them, with the deployer's rights.
    """
    properties = {"AssumeRolePolicyDocument": LAMBDA_TRUST, "ManagedPolicyArns": [BASIC_EXECUTION, VPC_ACCESS]}
    if statements:
        properties["Policies"] = [
            {"PolicyName": "function", "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}
        ]
    return {"Type": "AWS::IAM::Role", "Properties": properties}


def roles() -> dict:
    """Each function's role, with what its code calls and nothing more. The hot path only
    writes the order's outbox row (the relay in the workers or the beat publishes it) and the
    legacy API calls no AWS service: neither gets more than logs and the VPC. The beat
    publishes orders (outbox relay, stalled orders; kombu declares the predefined queue, asking
    its attributes) and relays the log to the checkout bus."""
    return {
        "HotpathRole": _app_role([]),
        "LegacyApiRole": _app_role([]),
        "BeatRole": _app_role(
            [
                {
                    "Effect": "Allow",
                    "Action": ["sqs:SendMessage", "sqs:GetQueueAttributes"],
                    "Resource": {"Fn::GetAtt": ["OrderQueue", "Arn"]},
                },
                {"Effect": "Allow", "Action": "events:PutEvents", "Resource": {"Fn::GetAtt": ["CheckoutBus", "Arn"]}},
            ]
        ),
    }


def _app_function(
    handler: str, env: dict, role: str, *, timeout: int = 29, reserved_concurrency: dict | None = None
) -> dict:
    function = {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Runtime": "python3.12",
            "Handler": handler,
            "Role": {"Fn::GetAtt": [role, "Arn"]},
            "Code": {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "AppCodeKey"}},
            "MemorySize": 1024,
            "Timeout": timeout,
            # In the VPC: the database and the legacy API's private endpoint are there.
            "VpcConfig": {"SubnetIds": {"Ref": "AppSubnetIds"}, "SecurityGroupIds": {"Ref": "AppSecurityGroupIds"}},
            "Environment": {"Variables": env},
        },
    }
    if reserved_concurrency is not None:
        function["Properties"]["ReservedConcurrentExecutions"] = reserved_concurrency
    return function


def _invoke_permission(function: str, principal: str, source_arn: dict) -> dict:
    return {
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Ref": function},
            "Principal": principal,
            "SourceArn": source_arn,
        },
    }


def _execute_api_arn(api: str) -> dict:
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{api}}}/*"}


def hotpath_api() -> dict:
    """The hot path's HTTP API: one $default route to the function (public, but the function
    answers only requests carrying the origin secret), throttled to 429 before the function's
    reserved concurrency runs out."""
    return {
        "HotpathApi": {
            "Type": "AWS::ApiGatewayV2::Api",
            "Properties": {"Name": {"Fn::Sub": "${AWS::StackName}-hotpath"}, "ProtocolType": "HTTP"},
        },
        "HotpathIntegration": {
            "Type": "AWS::ApiGatewayV2::Integration",
            "Properties": {
                "ApiId": {"Ref": "HotpathApi"},
                "IntegrationType": "AWS_PROXY",
                "IntegrationUri": {"Fn::GetAtt": ["HotpathFunction", "Arn"]},
                "PayloadFormatVersion": "2.0",
            },
        },
        "HotpathRoute": {
            "Type": "AWS::ApiGatewayV2::Route",
            "Properties": {
                "ApiId": {"Ref": "HotpathApi"},
                "RouteKey": "$default",
                "Target": {"Fn::Sub": "integrations/${HotpathIntegration}"},
            },
        },
        "HotpathStage": {
            "Type": "AWS::ApiGatewayV2::Stage",
            "Properties": {
                "ApiId": {"Ref": "HotpathApi"},
                "StageName": "$default",
                "AutoDeploy": True,
                "DefaultRouteSettings": {
                    "ThrottlingBurstLimit": {"Ref": "HotpathReservedConcurrency"},
                    "ThrottlingRateLimit": {"Ref": "HotpathThrottleRateLimit"},
                },
            },
        },
        "HotpathInvokePermission": _invoke_permission(
            "HotpathFunction", "apigateway.amazonaws.com", _execute_api_arn("HotpathApi")
        ),
    }


def legacy_api() -> dict:
    """The legacy API as a PRIVATE REST API: only the VPC endpoint LegacyApiVpcEndpointId reaches it."""
    return {
        "LegacyApi": {
            "Type": "AWS::ApiGateway::RestApi",
            "Properties": {
                "Name": {"Fn::Sub": "${AWS::StackName}-legacy-api"},
                "EndpointConfiguration": {"Types": ["PRIVATE"], "VpcEndpointIds": [{"Ref": "LegacyApiVpcEndpointId"}]},
                "Policy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "execute-api:Invoke",
                            "Resource": "execute-api:/*",
                            "Condition": {"StringNotEquals": {"aws:SourceVpce": {"Ref": "LegacyApiVpcEndpointId"}}},
                        },
                        {
                            "Effect": "Allow",
                            "Principal": "*",
                            "Action": "execute-api:Invoke",
                            "Resource": "execute-api:/*",
                        },
                    ],
                },
            },
        },
        "LegacyApiProxyResource": {
            "Type": "AWS::ApiGateway::Resource",
            "Properties": {
                "RestApiId": {"Ref": "LegacyApi"},
                "ParentId": {"Fn::GetAtt": ["LegacyApi", "RootResourceId"]},
                "PathPart": "{proxy+}",
            },
        },
        "LegacyApiProxyMethod": {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "RestApiId": {"Ref": "LegacyApi"},
                "ResourceId": {"Ref": "LegacyApiProxyResource"},
                "HttpMethod": "ANY",
                # The legacy API checks each caller's bearer token itself.
                "AuthorizationType": "NONE",
                "Integration": {
                    "Type": "AWS_PROXY",
                    "IntegrationHttpMethod": "POST",
                    "Uri": {
                        "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31"
                        "/functions/${LegacyApiFunction.Arn}/invocations"
                    },
                },
            },
        },
        "LegacyApiDeployment": {
            "Type": "AWS::ApiGateway::Deployment",
            "DependsOn": ["LegacyApiProxyMethod"],
            "Properties": {"RestApiId": {"Ref": "LegacyApi"}},
        },
        "LegacyApiStage": {
            "Type": "AWS::ApiGateway::Stage",
            "Properties": {
                "RestApiId": {"Ref": "LegacyApi"},
                "DeploymentId": {"Ref": "LegacyApiDeployment"},
                "StageName": LEGACY_STAGE,
            },
        },
        "LegacyApiInvokePermission": _invoke_permission(
            "LegacyApiFunction", "apigateway.amazonaws.com", _execute_api_arn("LegacyApi")
        ),
    }


def beat() -> dict:
    """What Celery beat runs elsewhere, every minute: EventBridge invokes `config.lambda_beat`."""
    return {
        "BeatSchedule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Description": "Sweeps the hot path's outbox, stalled orders, reservations and sale windows.",
                "ScheduleExpression": "rate(1 minute)",
                "State": "ENABLED",
                "Targets": [{"Arn": {"Fn::GetAtt": ["BeatFunction", "Arn"]}, "Id": "beat"}],
            },
        },
        "BeatInvokePermission": _invoke_permission(
            "BeatFunction", "events.amazonaws.com", {"Fn::GetAtt": ["BeatSchedule", "Arn"]}
        ),
        "BeatInvokeConfig": {
            "Type": "AWS::Lambda::EventInvokeConfig",
            "Properties": {
                "FunctionName": {"Ref": "BeatFunction"},
                "Qualifier": "$LATEST",
                "MaximumRetryAttempts": 0,
                "MaximumEventAgeInSeconds": 60,
            },
        },
    }


def resources() -> dict:
    """The application's resources: the order queue, the functions, their roles and APIs, the beat's
    schedule and the checkout bus."""
    app_env = {
        "DJANGO_ENV": "production",
        "VAR_DIR": LAMBDA_VAR_DIR,
        "DATABASE_URL": {"Ref": "DatabaseUrl"},
        "REDIS_URL": {"Ref": "RedisUrl"},
        "SECRET_KEY": {"Ref": "SecretKey"},
        "CARD_ENCRYPTION_KEY": _secret("card_encryption_key"),
        "CELERY_BROKER_URL": "sqs://",
        "ORDERS_QUEUE_URL": {"Ref": "OrderQueue"},
        "LEGACY_API_URL": {"Fn::Sub": f"https://{LEGACY_DOMAIN}/{LEGACY_STAGE}/legacy-api"},
        "LEGACY_API_TOKEN_HOTPATH": _secret("legacy_api_token_hotpath"),
    }
    hotpath_env = {
        **app_env,
        "SHOP_DEPLOYMENT": "hotpath",
        # CloudFront sends the API's own Host (the viewer's would break API Gateway).
        "ALLOWED_HOSTS": {"Fn::Sub": f"{HOTPATH_DOMAIN},${{Distribution.DomainName}}"},
        "EDGE_ORIGIN_SECRET": {"Ref": "OriginSecret"},
        # CloudFront and API Gateway each append to X-Forwarded-For.
        "ORDERS_CLIENT_IP_HEADER": "X-Forwarded-For",
        "ORDERS_TRUSTED_PROXY_HOPS": "2",
    }
    legacy_env = {
        # The legacy API never opens a sealed card: it is not given the key that opens them.
        **{k: v for k, v in app_env.items() if not k.startswith("LEGACY_API_") and k != "CARD_ENCRYPTION_KEY"},
        "SHOP_DEPLOYMENT": "legacy",
        "ALLOWED_HOSTS": {"Fn::Sub": LEGACY_DOMAIN},
        "LEGACY_API_TOKEN_STOREFRONT": _secret("legacy_api_token_storefront"),
        "LEGACY_API_TOKEN_HOTPATH": _secret("legacy_api_token_hotpath"),
    }
    beat_env = {
        **app_env,
        "SHOP_DEPLOYMENT": "hotpath",
        # Its consumers' and sweeps' statements may take longer than an order's (the hot
        # path's 5 s), never longer than the function itself (55 s).
        "DATABASE_STATEMENT_TIMEOUT_MS": "45000",
        "ALLOWED_HOSTS": {"Fn::Sub": HOTPATH_DOMAIN},
        # The beat's run of the log's consumers includes the relay to the checkout bus.
        "EVENTBRIDGE_BUS_NAME": {"Ref": "CheckoutBus"},
        # It sends the buyers' confirmations a worker could not (shop.confirmations), through
        # the shop's mail server, with links to the shop as buyers reach it.
        "EMAIL_HOST": {"Ref": "EmailHost"},
        "EMAIL_PORT": {"Ref": "EmailPort"},
        "EMAIL_HOST_USER": _secret("email_host_user"),
        "EMAIL_HOST_PASSWORD": _secret("email_host_password"),
        "DEFAULT_FROM_EMAIL": {"Ref": "EmailFrom"},
        "SHOP_BASE_URL": {"Ref": "ShopBaseUrl"},
    }
    return {
        "OrderDeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"MessageRetentionPeriod": DEAD_LETTER_RETENTION},
        },
        "OrderQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                # Longer than any order task, so a message is never handled twice at once.
                "VisibilityTimeout": ORDER_VISIBILITY_TIMEOUT,
                "MessageRetentionPeriod": ORDER_MESSAGE_RETENTION,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["OrderDeadLetterQueue", "Arn"]},
                    "maxReceiveCount": 5,
                },
            },
        },
        **roles(),
        "HotpathFunction": _app_function(
            "config.lambda_hotpath.lambda_handler",
            hotpath_env,
            "HotpathRole",
            reserved_concurrency={"Ref": "HotpathReservedConcurrency"},
        ),
        "LegacyApiFunction": _app_function(
            "config.lambda_legacy.lambda_handler",
            legacy_env,
            "LegacyApiRole",
            reserved_concurrency={"Ref": "LegacyApiReservedConcurrency"},
        ),
        "BeatFunction": _app_function(
            "config.lambda_beat.lambda_handler",
            beat_env,
            "BeatRole",
            timeout=55,
            reserved_concurrency=BEAT_RESERVED_CONCURRENCY,
        ),
        **hotpath_api(),
        **legacy_api(),
        **beat(),
        # The unified log's bus, with an example rule delivering checkout events to a queue.
        **events_aws.cloudformation_resources(),
    }
