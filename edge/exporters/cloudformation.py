"""One CloudFormation template for the whole edge: distribution, origins, the Lambda@Edge
router, the mini-site bucket, and beside them the application's resources (`cfn_app`): the
order queue, the hot path as a Lambda function behind an API Gateway HTTP API, the legacy
API as a private one, and the sweeper of the outbox.

- Every CloudFront origin gets `X-Origin-Verify` (the OriginSecret parameter); the hot
  path refuses requests without it (EDGE_ORIGIN_SECRET), so its API's domain is no way round.
- Secrets are never in the template: the database URL, the Redis URL, the secret key and
  the origin secret are NoEcho parameters; the legacy API tokens (`manage.py legacy_api_token CALLER`)
  and the card key are read from one Secrets Manager secret named by AppSecretName.

Lambda@Edge functions must live in us-east-1, so the template refuses other regions.
"""

from __future__ import annotations

import copy

from edge.exporters import cfn_app, cloudfront

DISTRIBUTION_ARN = "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${Distribution}"


def _api_domain(api: str) -> dict:
    return {"Fn::Select": [2, {"Fn::Split": ["/", {"Fn::GetAtt": [api, "ApiEndpoint"]}]}]}


# The resources that hold data: the order queues (orders accepted and not yet placed), the
# checkout events' queues, the mini-site's bucket, and any log group, table or secret added
# later. Deleting the stack, or an update that replaces one, keeps it (SQS and S3 have no
# snapshots): a platform engineer drains or empties it, then deletes it by hand.
RETAINED_TYPES = frozenset(
    {"AWS::SQS::Queue", "AWS::S3::Bucket", "AWS::Logs::LogGroup", "AWS::DynamoDB::Table", "AWS::SecretsManager::Secret"}
)


def _data_kept(resources: dict) -> dict:
    """`resources` with every one of RETAINED_TYPES retained on deletion and on replacement."""
    return {
        name: {**resource, "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
        if resource["Type"] in RETAINED_TYPES
        else resource
        for name, resource in resources.items()
    }


# The distribution's comment, by which edge_deploy finds it (EDGE_DISTRIBUTION_COMMENT).
DISTRIBUTION_COMMENT = {"Fn::Sub": "${AWS::StackName} shop edge"}


def _distribution_config(table: dict) -> dict:
    config = cloudfront.distribution_config(table, lambda_arn="EDGE_VERSION")
    # CloudFormation generates the caller reference and takes its own origin shape.
    for key in ("CallerReference", "Aliases", "OriginGroups", "DefaultRootObject"):
        config.pop(key, None)
    config["CustomErrorResponses"] = config["CustomErrorResponses"]["Items"]
    domains = {
        "hotpath": _api_domain("HotpathApi"),
        # Private: CloudFront cannot reach it, so a route to it gets a 403, never the API.
        "legacy-api": {"Fn::Sub": cfn_app.LEGACY_DOMAIN},
        "monolith": {"Ref": "MonolithDomain"},
    }
    origins = []
    for item in config["Origins"]["Items"]:
        item = copy.deepcopy(item)
        item.pop("CustomHeaders", None)
        item["OriginCustomHeaders"] = cloudfront.origin_headers({"Ref": "OriginSecret"})
        if "S3OriginConfig" in item:
            item["DomainName"] = {"Fn::GetAtt": ["MinisiteBucket", "RegionalDomainName"]}
            item["S3OriginConfig"] = {"OriginAccessIdentity": ""}
            item["OriginAccessControlId"] = {"Fn::GetAtt": ["MinisiteOriginAccessControl", "Id"]}
        else:
            item["DomainName"] = domains.get(item["Id"], item["DomainName"])
            custom = item["CustomOriginConfig"]
            custom["OriginSSLProtocols"] = custom.pop("OriginSslProtocols")["Items"]
            if item["Id"] == "monolith":
                # A load balancer on its standard ports, not this machine's development port.
                custom.update(HTTPPort=80, HTTPSPort=443, OriginProtocolPolicy={"Ref": "MonolithProtocol"})
        origins.append(item)
    config["Origins"] = origins

    def behaviour(b: dict) -> dict:
        b = copy.deepcopy(b)
        b["AllowedMethods"], b["CachedMethods"] = (
            b["AllowedMethods"]["Items"],
            b["AllowedMethods"]["CachedMethods"]["Items"],
        )
        b["LambdaFunctionAssociations"] = [
            {
                "EventType": a["EventType"],
                "IncludeBody": a["IncludeBody"],
                "LambdaFunctionARN": {"Ref": "EdgeRouterVersion"},
            }
            for a in b["LambdaFunctionAssociations"].get("Items", [])
        ]
        for key in ("FunctionAssociations", "FieldLevelEncryptionId"):
            b.pop(key, None)
        return b

    config["DefaultCacheBehavior"] = behaviour(config["DefaultCacheBehavior"])
    config["CacheBehaviors"] = [behaviour(b) for b in config["CacheBehaviors"].get("Items", [])]
    config["Restrictions"] = {"GeoRestriction": {"RestrictionType": "none"}}
    config["IPV6Enabled"] = config.pop("IsIPV6Enabled")
    config["Comment"] = DISTRIBUTION_COMMENT
    return config


def template(table: dict) -> dict:
    body = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "The shop's edge: CloudFront routes, Lambda@Edge router, mini-site, hot path and order queue.",
        "Parameters": {
            "MonolithDomain": {"Type": "String", "Description": "Domain of the monolith (e.g. its load balancer)."},
            "MonolithProtocol": {
                "Type": "String",
                "Default": "https-only",
                "AllowedValues": ["https-only", "http-only"],
                "Description": "How CloudFront reaches the monolith: HTTPS on 443, or HTTP on 80.",
            },
            "CodeBucket": {"Type": "String", "Description": "Bucket holding the code packages."},
            "EdgeCodeKey": {"Type": "String", "Default": "edge/lambda-edge.zip"},
            "AppCodeKey": {"Type": "String", "Default": "app/shop.zip"},
            "DatabaseUrl": {"Type": "String", "NoEcho": True},
            "RedisUrl": {
                "Type": "String",
                "NoEcho": True,
                "Description": "The functions' shared cache (REDIS_URL), reachable from their subnets.",
            },
            "SecretKey": {"Type": "String", "NoEcho": True, "MinLength": 50},
            "OriginSecret": {
                "Type": "String",
                "NoEcho": True,
                "MinLength": 32,
                "AllowedPattern": "[A-Za-z0-9._~+/=-]+",
                "Description": "X-Origin-Verify, sent by CloudFront to every origin (EDGE_ORIGIN_SECRET).",
            },
            "AppSecretName": {
                "Type": "String",
                "Default": "shop/app",
                "Description": "Secrets Manager secret (JSON) with legacy_api_token_storefront, "
                "legacy_api_token_hotpath, card_encryption_key, email_host_user and email_host_password.",
            },
            "EmailHost": {"Type": "String", "MinLength": 1, "Description": "The mail server (EMAIL_HOST)."},
            "EmailPort": {"Type": "Number", "Default": 587, "Description": "Its port, with STARTTLS (EMAIL_PORT)."},
            "EmailFrom": {"Type": "String", "MinLength": 3, "Description": "The buyers' emails' sender."},
            "ShopBaseUrl": {
                "Type": "String",
                "AllowedPattern": "https://.+",
                "Description": "The shop as buyers reach it, for the links in their emails (SHOP_BASE_URL).",
            },
            "AppSubnetIds": {"Type": "List<AWS::EC2::Subnet::Id>", "Description": "Private subnets of the functions."},
            "AppSecurityGroupIds": {"Type": "List<AWS::EC2::SecurityGroup::Id>"},
            "HotpathReservedConcurrency": {
                "Type": "Number",
                "Default": cfn_app.HOTPATH_RESERVED_CONCURRENCY,
                "MinValue": 1,
                "Description": "The hot path function's reserved concurrency: the most instances a stampede "
                "runs at once, each with a PostgreSQL connection of its own (CONN_MAX_AGE=0): it bounds the hot "
                "path's database connections. Requests beyond it are throttled.",
            },
            "LegacyApiReservedConcurrency": {
                "Type": "Number",
                "Default": cfn_app.LEGACY_API_RESERVED_CONCURRENCY,
                "MinValue": cfn_app.LEGACY_API_MIN_CONCURRENCY,
                "Description": "The legacy API function's reserved concurrency: instances no other function "
                "of the account can take, so the drain of the order queue is never starved. At least its order "
                "capacity (LEGACY_CAPACITY) plus one for holds and stock reads. The beat keeps 1 of its own.",
            },
            "HotpathThrottleRateLimit": {
                "Type": "Number",
                "Default": cfn_app.HOTPATH_THROTTLE_RATE_LIMIT,
                "MinValue": 1,
                "Description": "Requests a second the hot path's API passes to its function, in bursts of at most "
                "HotpathReservedConcurrency; beyond them API Gateway answers 429, which buyers' pages ask them to "
                "wait on, before a throttled function's 500. Keep it below the reserved concurrency divided by "
                "the hot path's mean answer time in seconds.",
            },
            "LegacyApiVpcEndpointId": {
                "Type": "String",
                "Description": "The VPC's execute-api interface endpoint: the only way to the legacy API.",
            },
        },
        "Rules": {
            "EdgeFunctionsInUsEast1": {
                "Assertions": [
                    {
                        "Assert": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]},
                        "AssertDescription": "Lambda@Edge functions must be created in us-east-1.",
                    }
                ]
            }
        },
        "Resources": {
            "EdgeRouterRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": cfn_app.EDGE_LAMBDA_TRUST,
                    "ManagedPolicyArns": [cfn_app.BASIC_EXECUTION],
                },
            },
            "EdgeRouterFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    # No environment variables: Lambda@Edge has none; the routes are in the zip.
                    "Runtime": "python3.12",
                    "Handler": "edge.lambda_edge.handler",
                    "Role": {"Fn::GetAtt": ["EdgeRouterRole", "Arn"]},
                    "Code": {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "EdgeCodeKey"}},
                    "MemorySize": 128,
                    "Timeout": 5,
                    "Architectures": ["x86_64"],
                },
            },
            "EdgeRouterVersion": {
                "Type": "AWS::Lambda::Version",
                "Properties": {"FunctionName": {"Ref": "EdgeRouterFunction"}},
            },
            "MinisiteBucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    },
                },
            },
            "MinisiteOriginAccessControl": {
                "Type": "AWS::CloudFront::OriginAccessControl",
                "Properties": {
                    "OriginAccessControlConfig": {
                        "Name": {"Fn::Sub": "${AWS::StackName}-minisite"},
                        "OriginAccessControlOriginType": "s3",
                        "SigningBehavior": "always",
                        "SigningProtocol": "sigv4",
                    }
                },
            },
            "MinisiteBucketPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": "MinisiteBucket"},
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "cloudfront.amazonaws.com"},
                                "Action": "s3:GetObject",
                                "Resource": {"Fn::Sub": "${MinisiteBucket.Arn}/*"},
                                "Condition": {"StringEquals": {"AWS:SourceArn": {"Fn::Sub": DISTRIBUTION_ARN}}},
                            }
                        ],
                    },
                },
            },
            **cfn_app.resources(),
            "Distribution": {
                "Type": "AWS::CloudFront::Distribution",
                "Properties": {"DistributionConfig": _distribution_config(table)},
            },
        },
        "Outputs": {
            "DistributionId": {"Value": {"Ref": "Distribution"}},
            "DistributionDomainName": {"Value": {"Fn::GetAtt": ["Distribution", "DomainName"]}},
            "EdgeRouterVersionArn": {"Value": {"Ref": "EdgeRouterVersion"}},
            "MinisiteBucketName": {"Value": {"Ref": "MinisiteBucket"}},
            "OrderQueueUrl": {"Value": {"Ref": "OrderQueue"}},
            "OrderDeadLetterQueueUrl": {"Value": {"Ref": "OrderDeadLetterQueue"}},
            "HotpathApiUrl": {"Value": {"Fn::GetAtt": ["HotpathApi", "ApiEndpoint"]}},
            "LegacyApiUrl": {
                "Value": {"Fn::Sub": f"https://{cfn_app.LEGACY_DOMAIN}/{cfn_app.LEGACY_STAGE}/legacy-api"}
            },
            # What edge_deploy must be given (the settings of the same names) to manage this
            # stack's distribution, function and bucket rather than make its own.
            **{
                name: {"Description": f"edge_deploy's {setting}", "Value": value}
                for name, setting, value in (
                    ("EdgeDistributionComment", "EDGE_DISTRIBUTION_COMMENT", DISTRIBUTION_COMMENT),
                    ("EdgeLambdaFunction", "EDGE_LAMBDA_FUNCTION", {"Ref": "EdgeRouterFunction"}),
                    ("EdgeLambdaRoleArn", "EDGE_LAMBDA_ROLE_ARN", {"Fn::GetAtt": ["EdgeRouterRole", "Arn"]}),
                    ("EdgeMinisiteBucket", "EDGE_MINISITE_BUCKET", {"Ref": "MinisiteBucket"}),
                    (
                        "EdgeMinisiteOacId",
                        "EDGE_MINISITE_OAC_ID",
                        {"Fn::GetAtt": ["MinisiteOriginAccessControl", "Id"]},
                    ),
                )
            },
        },
    }
    return {**body, "Resources": _data_kept(body["Resources"])}
