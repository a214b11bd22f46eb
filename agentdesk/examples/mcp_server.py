"""An example MCP server to try an agent defined in admin with (README: "An agent without
code"): a help-desk with a read-only lookup and a side effect.

    .venv/bin/python -m agentdesk.examples.mcp_server --port 8765     # http://127.0.0.1:8765/mcp

Tools:
- ``lookup_customer(email)``: read-only (``readOnlyHint``): the customer's plan and status;
- ``open_ticket(email, summary)``: changes data: opens a support ticket. The idempotency
  key AgentDesk sends in the request's ``_meta`` makes a repeated call return the same
  ticket instead of opening a second one. Tickets go to ``$AGENTDESK_DATA_DIR/tickets.jsonl``.

Built with the official SDK's FastMCP; any MCP server works the same way.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
from pathlib import Path
from typing import Any

from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations

CUSTOMERS = {
    "ada@example.com": {"name": "Ada Lovelace", "plan": "Pro", "status": "active"},
    "grace@example.com": {"name": "Grace Hopper", "plan": "Team", "status": "past_due"},
    "alan@example.com": {"name": "Alan Turing", "plan": "Free", "status": "active"},
}


def tickets_file() -> Path:
    return Path(os.environ.get("AGENTDESK_DATA_DIR", "var")) / "tickets.jsonl"


def build(port: int) -> FastMCP:
    server = FastMCP("agentdesk-example", host="127.0.0.1", port=port, log_level="WARNING")

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def lookup_customer(email: str) -> dict[str, Any]:
        """Look up a customer by email: name, plan and account status."""
        customer = CUSTOMERS.get(email.strip().lower())
        if customer is None:
            raise ToolError(f"no customer with email {email}")
        return {"email": email.strip().lower(), **customer}

    @server.tool()
    def open_ticket(email: str, summary: str, ctx: Context) -> dict[str, Any]:
        """Open a support ticket for a customer (changes data: the help-desk records it)."""
        meta = ctx.request_context.meta
        key = str((meta.model_extra or {}).get("idempotency_key", "")) if meta else ""
        path = tickets_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.seek(0)
            for line in fh:
                ticket = json.loads(line)
                if key and ticket["idempotency_key"] == key:
                    return {**ticket, "replayed": True}
            fh.seek(0)
            number = sum(1 for _ in fh) + 1
            ticket = {"ticket": f"T-{number:04d}", "email": email, "summary": summary,
                      "idempotency_key": key}
            fh.write(json.dumps(ticket) + "\n")
        return {**ticket, "replayed": False}

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--stdio", action="store_true", help="serve over stdio instead")
    args = parser.parse_args()
    build(args.port).run("stdio" if args.stdio else "streamable-http")


if __name__ == "__main__":
    main()
