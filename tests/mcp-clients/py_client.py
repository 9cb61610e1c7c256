"""Drives every tool of the mcp-server with the official Python SDK (`mcp`)
over Streamable HTTP with a bearer token; prints what it saw as JSON. The e2e
test (tests/e2e/tests/mcp.rs) runs it and checks the effects through the REST
API and the audit log. Env: MCP_URL, MCP_TOKEN.

The client connects in its default mode: it probes `server/discover` (the
stateless 2026-07-28 revision), gets a JSON-RPC error, and falls back to the
`initialize` handshake of 2025-11-25.
"""

import asyncio
import json
import os

from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError


async def main() -> None:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {os.environ['MCP_TOKEN']}"})
    async with http, Client(streamable_http_client(os.environ["MCP_URL"], http_client=http)) as client:
        tools = sorted(t.name for t in (await client.list_tools()).tools)

        async def call(name: str, args: dict):
            result = await client.call_tool(name, args)
            if not result.is_error:
                assert json.loads(result.content[0].text) == result.structured_content, name
            return result

        added = await call(
            "add_task",
            {"title": "Team meeting prep", "priority": "high", "tags": ["work"], "due_at": "2030-01-02T09:00:00Z", "reminders": ["PT15M"]},
        )
        assert not added.is_error, added
        first = added.structured_content["task_id"]
        quick = await call("quick_add", {"text": "Call mom tomorrow 6pm #family p1", "time_zone": "Europe/Paris"})
        assert not quick.is_error, quick
        second = quick.structured_content["task_id"]
        pending = await call("list_tasks", {"status": "pending"})
        found = await call("find_tasks", {"query": "meeting"})
        updated = await call("update_task", {"task_id": first, "title": "Team meeting agenda"})
        completed = await call("complete_task", {"task_id": second})
        deleted = await call("delete_task", {"task_id": first})
        bad_args = await call("add_task", {"title": ""})
        missing = await call("complete_task", {"task_id": first})
        try:
            await client.call_tool("no_such_tool", {})
            unknown = None
        except MCPError as e:
            unknown = e.code
        print(
            json.dumps(
                {
                    "protocol": client.protocol_version,
                    "tools": tools,
                    "first": first,
                    "second": second,
                    "quick_task": quick.structured_content["task"],
                    "pending": [t["id"] for t in pending.structured_content["tasks"]],
                    "found": [t["id"] for t in found.structured_content["tasks"]],
                    "updated_title": updated.structured_content["title"],
                    "completed": completed.structured_content["task"]["completed"],
                    "deleted_status": deleted.structured_content["status"],
                    "bad_args": {"isError": bad_args.is_error, "text": bad_args.content[0].text},
                    "missing": {"isError": missing.is_error, "text": missing.content[0].text},
                    "unknown_tool_code": unknown,
                }
            )
        )


asyncio.run(main())
