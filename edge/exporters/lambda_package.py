"""The Lambda@Edge router as a deployable zip, with the route table baked in."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from edge import lambda_edge

EDGE_DIR = Path(__file__).resolve().parent.parent
HANDLER = "edge.lambda_edge.handler"
RUNTIME = "python3.12"
# Fixed timestamps make the zip byte-identical for the same routes, so a deploy with
# nothing changed publishes nothing.
_EPOCH = (2020, 1, 1, 0, 0, 0)


def routes_json(table: dict) -> str:
    """The table as the function reads it, with the tester's header names it uses: CloudFront
    keeps X-Edge-* for itself, so the function's differ from nginx's and the middleware's."""
    table = {
        **table,
        "canary_header": lambda_edge.CANARY_HEADER,
        "canary_secret_header": lambda_edge.CANARY_SECRET_HEADER,
    }
    return json.dumps(table, indent=2, sort_keys=True)


def build_zip(table: dict) -> bytes:
    files = {
        "edge/__init__.py": '"""The shop\'s edge router, packaged for Lambda@Edge."""\n',
        "edge/matcher.py": (EDGE_DIR / "matcher.py").read_text(),
        "edge/lambda_edge.py": (EDGE_DIR / "lambda_edge.py").read_text(),
        "edge/routes.json": routes_json(table),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
    return buffer.getvalue()
