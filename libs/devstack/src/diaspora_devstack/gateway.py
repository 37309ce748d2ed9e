"""The gateway: nginx (Debian package) in front of the services, as a local process.

`devstack gateway` renders ``deploy/local/nginx/nginx.conf.template`` into
``.local/gateway/conf/`` and runs nginx in the foreground with that prefix and
configuration (pid file under ``.local/run``, access log under ``.local/log``).
No root needed: it listens on a port above 1024 (127.0.0.1:8080 by default).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from diaspora_devstack.config import StackConfig

NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx")
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
TEMPLATE_FILES = ("security-headers.conf", "proxy.conf")


class GatewayError(RuntimeError):
    pass


@dataclass(frozen=True)
class GatewaySettings:
    listen: str = "127.0.0.1:8080"
    upstreams: dict[str, str] = field(
        default_factory=lambda: {
            "registry": "127.0.0.1:8101",
            "notifications": "127.0.0.1:8102",
            "matching": "127.0.0.1:8103",
            "consular": "127.0.0.1:8104",
            "returnees": "127.0.0.1:8105",
        }
    )
    rate_per_address: str = "50r/s"
    burst_per_address: int = 100
    rate_per_token: str = "20r/s"  # noqa: S105 (a rate, not a secret)
    burst_per_token: int = 40
    body_limit: str = "1m"
    # Load balancers in front of the gateway whose X-Forwarded-For names the client
    # (addresses or networks). None by default: the gateway is the edge, and a client's
    # X-Forwarded-For is ignored (rate limits and the services see the real peer).
    trusted_proxies: tuple[str, ...] = ()
    # A separate folder per instance (tests run their own gateways).
    name: str = "gateway"


def nginx_binary() -> str:
    for candidate in NGINX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise GatewayError(
        "nginx not found; install it: apt-get install nginx-light (scripts/setup.sh)"
    )


def template_dir(cfg: StackConfig) -> Path:
    return cfg.root / "deploy" / "local" / "nginx"


def prefix_dir(cfg: StackConfig, settings: GatewaySettings) -> Path:
    return cfg.state / settings.name


def pid_file(cfg: StackConfig, settings: GatewaySettings) -> Path:
    return cfg.run_dir / f"{settings.name}.pid"


def access_log(cfg: StackConfig, settings: GatewaySettings) -> Path:
    return cfg.log_dir / f"{settings.name}-access.log"


def render(template: str, values: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise GatewayError(f"the gateway template uses {{{{{name}}}}}, which has no value")
        return values[name]

    return _PLACEHOLDER.sub(substitute, template)


def real_ip_directives(trusted_proxies: tuple[str, ...]) -> str:
    """nginx's realip module: the client address from X-Forwarded-For, only from these."""
    if not trusted_proxies:
        return "# No trusted proxies: the gateway is the edge ($remote_addr is the peer)."
    for entry in trusted_proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise GatewayError(f"trusted proxy {entry!r} is not an address or network") from None
    lines = [f"set_real_ip_from {entry};" for entry in trusted_proxies]
    return "\n    ".join([*lines, "real_ip_header X-Forwarded-For;", "real_ip_recursive on;"])


def _user_directive(temp: Path) -> str:
    """As root, nginx's workers run as nobody: they need the temp folders, nothing else."""
    if os.geteuid() != 0:
        return ""
    import grp
    import pwd

    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid).gr_name
    for folder in [temp, *temp.iterdir()]:
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    return f"user nobody {group};"


def prepare(cfg: StackConfig, settings: GatewaySettings) -> Path:
    """Render the configuration; returns the path of nginx.conf."""
    prefix = prefix_dir(cfg, settings)
    conf_dir = prefix / "conf"
    temp = prefix / "temp"
    for folder in (conf_dir, cfg.log_dir, cfg.run_dir, prefix / "logs"):
        folder.mkdir(parents=True, exist_ok=True)
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (temp / name).mkdir(parents=True, exist_ok=True)
    missing = {"registry", "notifications", "matching", "consular", "returnees"} - set(
        settings.upstreams
    )
    if missing:
        raise GatewayError(f"no upstream address for {sorted(missing)}")
    values = {
        "listen": settings.listen,
        "pid_file": str(pid_file(cfg, settings)),
        "temp": str(temp),
        "access_log": str(access_log(cfg, settings)),
        "user_directive": _user_directive(temp),
        "rate_per_address": settings.rate_per_address,
        "burst_per_address": str(settings.burst_per_address),
        "rate_per_token": settings.rate_per_token,
        "burst_per_token": str(settings.burst_per_token),
        "body_limit": settings.body_limit,
        "real_ip": real_ip_directives(settings.trusted_proxies),
        **{f"{name}_upstream": address for name, address in settings.upstreams.items()},
    }
    source = template_dir(cfg)
    conf = conf_dir / "nginx.conf"
    conf.write_text(render((source / "nginx.conf.template").read_text(), values))
    for name in TEMPLATE_FILES:
        (conf_dir / name).write_text(render((source / name).read_text(), values))
    # nginx writes the access log as the workers' user when it reopens it.
    access_log(cfg, settings).touch()
    return conf


def command(cfg: StackConfig, settings: GatewaySettings, conf: Path) -> list[str]:
    return [
        nginx_binary(),
        "-p",
        str(prefix_dir(cfg, settings)) + "/",
        "-c",
        str(conf),
        "-e",
        "stderr",
    ]


def run(cfg: StackConfig, settings: GatewaySettings) -> int:
    """Render the configuration and become nginx (in the foreground; SIGTERM stops it)."""
    conf = prepare(cfg, settings)
    argv = command(cfg, settings, conf)
    print(
        f"gateway: nginx on http://{settings.listen} -> "
        + ", ".join(f"/api/{n}/ -> {a}" for n, a in sorted(settings.upstreams.items())),
        flush=True,
    )
    os.execv(argv[0], argv)  # noqa: S606 (fixed argv, no shell)
    return 0  # pragma: no cover - execv does not return
