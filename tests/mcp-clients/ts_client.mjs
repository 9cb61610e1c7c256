// Drives every tool of the mcp-server with the official TypeScript SDK client
// over Streamable HTTP with a bearer token; prints what it saw as JSON. The
// e2e test (tests/e2e/tests/mcp.rs) runs it and checks the effects through the
// REST API and the audit log. Env: MCP_URL, MCP_TOKEN.
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";

const url = new URL(process.env.MCP_URL);
const transport = new StreamableHTTPClientTransport(url, {
  requestInit: { headers: { Authorization: `Bearer ${process.env.MCP_TOKEN}` } },
});
const client = new Client({ name: "todo-e2e-ts", version: "1.0.0" });
await client.connect(transport);

const tools = (await client.listTools()).tools.map((t) => t.name).sort();
// callTool validates structuredContent against each tool's outputSchema.
const call = async (name, args) => {
  const result = await client.callTool({ name, arguments: args });
  if (!result.isError) {
    assert.deepEqual(JSON.parse(result.content[0].text), result.structuredContent, `${name}: text is the structured content`);
  }
  return result;
};

const added = await call("add_task", {
  title: "Team meeting prep",
  priority: "high",
  tags: ["work"],
  due_at: "2030-01-02T09:00:00Z",
  reminders: ["PT15M"],
});
assert.equal(added.isError, false, JSON.stringify(added));
const first = added.structuredContent.task_id;
const quick = await call("quick_add", { text: "Call mom tomorrow 6pm #family p1", time_zone: "Europe/Paris" });
assert.equal(quick.isError, false, JSON.stringify(quick));
const second = quick.structuredContent.task_id;
const pending = await call("list_tasks", { status: "pending" });
const found = await call("find_tasks", { query: "meeting" });
const updated = await call("update_task", { task_id: first, title: "Team meeting agenda" });
const completed = await call("complete_task", { task_id: second });
const deleted = await call("delete_task", { task_id: first });
const badArgs = await call("add_task", { title: "" });
const missing = await call("complete_task", { task_id: first });
let unknownTool = null;
try {
  await client.callTool({ name: "no_such_tool", arguments: {} });
} catch (e) {
  unknownTool = e instanceof McpError ? e.code : String(e);
}
await client.close();

console.log(
  JSON.stringify({
    protocol: transport.protocolVersion ?? null,
    server: client.getServerVersion(),
    tools,
    first,
    second,
    quick_task: quick.structuredContent.task,
    pending: pending.structuredContent.tasks.map((t) => t.id),
    found: found.structuredContent.tasks.map((t) => t.id),
    updated_title: updated.structuredContent.title,
    completed: completed.structuredContent.task.completed,
    deleted_status: deleted.structuredContent.status,
    bad_args: { isError: badArgs.isError, text: badArgs.content[0].text },
    missing: { isError: missing.isError, text: missing.content[0].text },
    unknown_tool_code: unknownTool,
  }),
);
