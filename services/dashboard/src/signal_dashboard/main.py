"""`signal-dashboard`: start the Streamlit server on streamlit_app.py with the settings' server
options."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from signal_dashboard.settings import DashboardSettings

APP = Path(__file__).with_name("streamlit_app.py")


def streamlit_flags(settings: DashboardSettings) -> list[str]:
    """Streamlit server options for running headless behind a load balancer.

    - `/_stcore/health` is Streamlit's health check (the ALB target group's path).
    - `baseUrlPath` serves the app under a prefix when the ALB routes a path to it.
    - XSRF protection stays on (it needs CORS on, Streamlit's default); both work behind a
      proxy that keeps the Host header, as an ALB does. Replicas must share the cookie
      secret, and a browser session must stay on one replica (sticky sessions): the
      session's state and its websocket live in that process.
    - The websocket is pinged every 30 s, under the ALB's default 60 s idle timeout.
    - No usage statistics, no file watching, no developer toolbar.

    The cookie secret is not among them: see `streamlit_environment`.
    """
    flags = [
        f"--server.address={settings.host}",
        f"--server.port={settings.port}",
        f"--server.baseUrlPath={settings.base_url_path.strip('/')}",
        "--server.headless=true",
        "--server.enableCORS=true",
        "--server.enableXsrfProtection=true",
        "--server.websocketPingInterval=30",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=viewer",
        "--client.showErrorDetails=none",
        "--global.developmentMode=false",
    ]
    return flags


def streamlit_environment(settings: DashboardSettings) -> dict[str, str]:
    """Streamlit options passed through the environment rather than the command line.

    Streamlit refuses `--server.cookieSecret` on the command line ("Set this option in the
    configuration file or environment variable: 'STREAMLIT_SERVER_COOKIE_SECRET'"), and a
    secret on a command line is visible to every user of the host (`ps`).
    """
    if settings.cookie_secret is None:
        return {}
    return {"STREAMLIT_SERVER_COOKIE_SECRET": settings.cookie_secret.get_secret_value()}


def exit_status(code: object) -> int:
    """The process status of a `SystemExit` code: None is 0, an int is itself, anything else
    (a message, as `sys.exit("...")` gives) is printed to stderr and is 1, as Python does."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Parse the few command-line overrides, then hand over to Streamlit."""
    parser = argparse.ArgumentParser(
        prog="signal-dashboard",
        description="Serve the Signal Stream dashboard (Streamlit). It reads only the metrics "
        "API. Settings come from SIGNAL_DASHBOARD_* environment variables; see the README.",
    )
    parser.add_argument("--host", help="address to bind (SIGNAL_DASHBOARD_HOST)")
    parser.add_argument("--port", type=int, help="port to listen on (SIGNAL_DASHBOARD_PORT)")
    parser.add_argument("--api-url", help="metrics API base URL (SIGNAL_DASHBOARD_API_URL)")
    args = parser.parse_args(argv)
    # streamlit_app.py runs in the Streamlit server and reads the environment: overrides go there
    for key, value in (("HOST", args.host), ("PORT", args.port), ("API_URL", args.api_url)):
        if value is not None:
            os.environ[f"SIGNAL_DASHBOARD_{key}"] = str(value)
    try:
        settings = DashboardSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        print(f"signal-dashboard: invalid setting {where}: {first['msg']}", file=sys.stderr)
        return 2
    from streamlit.web import cli as streamlit_cli

    os.environ.update(streamlit_environment(settings))
    sys.argv = ["streamlit", "run", str(APP), *streamlit_flags(settings)]
    try:
        streamlit_cli.main()
    except SystemExit as exc:
        return exit_status(exc.code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
