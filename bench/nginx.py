"""nginx in front of the stack, loaded with the routes `edge_export --target nginx` wrote."""

from __future__ import annotations

import subprocess
import time

from bench.stack import Stack
from edge.exporters.nginx import main_context
from procs import wait_for_url


def nginx_start(stack: Stack, *, reload: bool = False) -> None:
    """Exports the routes for nginx and (re)loads them: the strangler fig's switch."""
    export = stack.out / "edge"
    stack.manage(
        "edge_export",
        "--target",
        "nginx",
        "--out",
        str(export),
        "--nginx-listen",
        f"127.0.0.1:{stack.ports['edge']}",
        capture=True,
    )
    conf_dir = stack.out / "nginx"
    (conf_dir / "logs").mkdir(parents=True, exist_ok=True)
    conf = (
        main_context()
        + f"""
worker_processes 1;
error_log {conf_dir}/logs/error.log warn;
pid {conf_dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {conf_dir}/body;
  proxy_temp_path {conf_dir}/proxy;
  fastcgi_temp_path {conf_dir}/fastcgi;
  uwsgi_temp_path {conf_dir}/uwsgi;
  scgi_temp_path {conf_dir}/scgi;
  include {export}/nginx-edge.conf;
  upstream bench_ceiling {{ server 127.0.0.1:{stack.ports["ceiling"]}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{stack.ports["ceiling_edge"]};
    location / {{
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_pass http://bench_ceiling;
    }}
  }}
}}
"""
    )
    (conf_dir / "nginx.conf").write_text(conf)
    argv = ["nginx", "-p", str(conf_dir), "-c", str(conf_dir / "nginx.conf")]
    if reload:
        subprocess.run([*argv, "-s", "reload"], check=True)
        time.sleep(1.0)  # the old workers finish their requests; new ones take the new routes
        return
    subprocess.run([*argv, "-t", "-q"], check=True)
    wait_for_url(stack.url("edge", "/shop/"), process=stack.start("nginx", [*argv, "-g", "daemon off;"]))
