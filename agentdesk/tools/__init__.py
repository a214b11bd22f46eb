"""Tools that are not written in Python by the agent's author: the tools of an MCP server
(``mcp.py``) and HTTP endpoints described in admin (``http.py``). Plain Python, like the
runtime: each builds ``agentdesk.runtime.tools.Tool`` objects, so these tools get the same
validation, timeouts, retries, circuit breaker, ledger and approval policy as any other."""
