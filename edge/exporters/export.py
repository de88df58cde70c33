"""Writes the chosen targets' artefacts to a directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.conf import settings

from edge import selectors
from edge.exporters import cloudformation, cloudfront, lambda_package, minisite, nginx

TARGETS = ("cloudfront", "lambda-edge", "cloudformation", "nginx", "minisite")
FILES = {
    "cloudfront": "cloudfront-distribution-config.json",
    "lambda-edge": "lambda-edge.zip",
    "cloudformation": "cloudformation.json",
    "nginx": "nginx-edge.conf",
    "minisite": "minisite",
}


def write_atomic(path: Path, data: bytes) -> None:
    """Readers (nginx on reload, a deploy) never see half a file. Readable by its owner only:
    the exports carry the origin and canary secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.chmod(tmp, 0o600)  # an earlier export's file, left with wider rights, is narrowed too
    os.replace(tmp, path)


def export(targets: list[str], out: Path, *, table: dict | None = None, nginx_listen: str = "80") -> list[Path]:
    table = selectors.route_table() if table is None else table
    written: list[Path] = []

    def put(name: str, data: bytes) -> None:
        write_atomic(out / name, data)
        written.append(out / name)

    for target in targets:
        if target == "cloudfront":
            config = cloudfront.distribution_config(
                table, oac_id=settings.EDGE_MINISITE_OAC_ID, origin_secret=settings.EDGE_ORIGIN_SECRET
            )
            put(FILES[target], json.dumps(config, indent=2).encode())
        elif target == "lambda-edge":
            put(FILES[target], lambda_package.build_zip(table))
            put("routes.json", lambda_package.routes_json(table).encode())
        elif target == "cloudformation":
            put(FILES[target], json.dumps(cloudformation.template(table), indent=2).encode())
        elif target == "nginx":
            config = nginx.server_config(table, listen=nginx_listen, origin_secret=settings.EDGE_ORIGIN_SECRET)
            put(FILES[target], config.encode())
        elif target == "minisite":
            for key, body in minisite.render_minisite().items():
                put(f"minisite/{key}", body)
    return written
