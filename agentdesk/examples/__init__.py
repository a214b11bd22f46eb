"""Examples a new user runs from the README (an MCP server for an agent defined in admin)."""
