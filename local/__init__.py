"""Docker-free local stack: moto server, HTTP API gateway, provider sandbox and stream poller.

Everything here is discovered from ``template.yaml`` so that a function joins the local stack by being added to
the template, never by being registered here. See ``docs/local-stack.md``.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
