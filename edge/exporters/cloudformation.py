"""One CloudFormation template for the whole edge: distribution, origins, the Lambda@Edge
router, the mini-site bucket, the order queue, and the hot path and legacy API as Lambda
functions behind API Gateway HTTP APIs.

Lambda@Edge functions must live in us-east-1, so the template refuses other regions.
"""

from __future__ import annotations

import copy

from edge.exporters import cloudfront

LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["lambda.amazonaws.com", "edgelambda.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
DISTRIBUTION_ARN = "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${Distribution}"


def _api_domain(api: str) -> dict:
    return {"Fn::Select": [2, {"Fn::Split": ["/", {"Fn::GetAtt": [api, "ApiEndpoint"]}]}]}


def _app_function(handler: str, env: dict) -> dict:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Runtime": "python3.12",
            "Handler": handler,
            "Role": {"Fn::GetAtt": ["AppRole", "Arn"]},
            "Code": {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "AppCodeKey"}},
            "MemorySize": 1024,
            "Timeout": 29,
            "Environment": {"Variables": env},
        },
    }


def _http_api(name: str, function: str) -> dict:
    # Quick create: one $default route, its Lambda proxy integration and auto-deployed stage.
    return {
        "Type": "AWS::ApiGatewayV2::Api",
        "Properties": {"Name": name, "ProtocolType": "HTTP", "Target": {"Fn::GetAtt": [function, "Arn"]}},
    }


def _invoke_permission(function: str, api: str) -> dict:
    return {
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Ref": function},
            "Principal": "apigateway.amazonaws.com",
            "SourceArn": {
                "Fn::Sub": f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{api}}}/*"
            },
        },
    }


def _distribution_config(table: dict) -> dict:
    config = cloudfront.distribution_config(table, lambda_arn="EDGE_VERSION")
    # CloudFormation generates the caller reference and takes its own origin shape.
    for key in ("CallerReference", "Aliases", "OriginGroups", "CustomErrorResponses", "DefaultRootObject"):
        config.pop(key, None)
    domains = {
        "hotpath": _api_domain("HotpathApi"),
        "legacy-api": _api_domain("LegacyApi"),
        "monolith": {"Ref": "MonolithDomain"},
    }
    origins = []
    for item in config["Origins"]["Items"]:
        item = copy.deepcopy(item)
        item.pop("CustomHeaders", None)
        if "S3OriginConfig" in item:
            item["DomainName"] = {"Fn::GetAtt": ["MinisiteBucket", "RegionalDomainName"]}
            item["S3OriginConfig"] = {"OriginAccessIdentity": ""}
            item["OriginAccessControlId"] = {"Fn::GetAtt": ["MinisiteOriginAccessControl", "Id"]}
        else:
            item["DomainName"] = domains.get(item["Id"], item["DomainName"])
            custom = item["CustomOriginConfig"]
            custom["OriginSSLProtocols"] = custom.pop("OriginSslProtocols")["Items"]
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
    config["Comment"] = {"Fn::Sub": "${AWS::StackName} shop edge"}
    return config


def template(table: dict) -> dict:
    app_env = {
        "DJANGO_ENV": "production",
        "DATABASE_URL": {"Ref": "DatabaseUrl"},
        "SECRET_KEY": {"Ref": "SecretKey"},
        "CELERY_BROKER_URL": "sqs://",
        "ORDER_QUEUE_URL": {"Ref": "OrderQueue"},
        "ALLOWED_HOSTS": "*",
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "The shop's edge: CloudFront routes, Lambda@Edge router, mini-site, hot path and order queue.",
        "Parameters": {
            "MonolithDomain": {"Type": "String", "Description": "Domain of the monolith (e.g. its load balancer)."},
            "CodeBucket": {"Type": "String", "Description": "Bucket holding the code packages."},
            "EdgeCodeKey": {"Type": "String", "Default": "edge/lambda-edge.zip"},
            "AppCodeKey": {"Type": "String", "Default": "app/shop.zip"},
            "DatabaseUrl": {"Type": "String", "NoEcho": True},
            "SecretKey": {"Type": "String", "NoEcho": True, "MinLength": 32},
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
                "Properties": {"AssumeRolePolicyDocument": LAMBDA_TRUST, "ManagedPolicyArns": [BASIC_EXECUTION]},
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
            "OrderDeadLetterQueue": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 1209600}},
            "OrderQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    # Longer than any order task, so a message is never handled twice at once.
                    "VisibilityTimeout": 300,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["OrderDeadLetterQueue", "Arn"]},
                        "maxReceiveCount": 5,
                    },
                },
            },
            "AppRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": LAMBDA_TRUST,
                    "ManagedPolicyArns": [BASIC_EXECUTION],
                    "Policies": [
                        {
                            "PolicyName": "order-queue",
                            "PolicyDocument": {
                                "Version": "2012-10-17",
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
                                        "Resource": {"Fn::GetAtt": ["OrderQueue", "Arn"]},
                                    }
                                ],
                            },
                        }
                    ],
                },
            },
            "HotpathFunction": _app_function(
                "config.lambda_hotpath.lambda_handler", {**app_env, "SHOP_DEPLOYMENT": "hotpath"}
            ),
            "LegacyApiFunction": _app_function(
                "config.lambda_legacy.lambda_handler", {**app_env, "SHOP_DEPLOYMENT": "legacy"}
            ),
            "HotpathApi": _http_api({"Fn::Sub": "${AWS::StackName}-hotpath"}, "HotpathFunction"),
            "LegacyApi": _http_api({"Fn::Sub": "${AWS::StackName}-legacy-api"}, "LegacyApiFunction"),
            "HotpathInvokePermission": _invoke_permission("HotpathFunction", "HotpathApi"),
            "LegacyApiInvokePermission": _invoke_permission("LegacyApiFunction", "LegacyApi"),
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
            "LegacyApiUrl": {"Value": {"Fn::GetAtt": ["LegacyApi", "ApiEndpoint"]}},
        },
    }
