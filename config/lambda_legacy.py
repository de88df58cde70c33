"""AWS Lambda entry point of the legacy deployment, behind API Gateway (v1 REST or v2 HTTP API)."""

import os

os.environ["SHOP_DEPLOYMENT"] = "legacy"
os.environ.setdefault("DJANGO_ENV", "production")

from apig_wsgi import make_lambda_handler

from config.wsgi import application

lambda_handler = make_lambda_handler(application, binary_support=True)
