"""Basic calls: a listing, a call, and schema-invalid arguments refused before anything is sent."""

from __future__ import annotations

SCENARIO = "basic calls"


async def test_a_listing_a_call_and_invalid_arguments_never_sent(peer, cell, bridge, functions):
    spec = peer.peer
    region = peer.region("a")
    await bridge(peer.url(region))

    listing = await functions("list_tools", path="/api/tools")
    assert listing.status == 200, listing.body
    tools = {tool["name"]: tool for tool in listing.json["tools"]}
    assert {spec.read_only.tool, spec.with_schema.tool} <= set(tools), sorted(tools)
    assert tools[spec.read_only.tool]["annotations"].get("readOnlyHint") is True
    assert not set(spec.absent_tools) & set(tools), "offered only to clients that declare the capability"

    reply = await functions.call_tool(spec.with_schema.tool, spec.with_schema.arguments)
    assert reply.status == 200, reply.body
    assert reply.json["content"], reply.body

    posts, runs = peer.posts(region), peer.tool_runs(region, spec.with_schema.tool)
    refused = await functions.call_tool(spec.with_schema.tool, spec.invalid_arguments)
    assert refused.status == 400, refused.body
    assert refused.json["type"].endswith(":invalid-arguments"), refused.json
    assert peer.posts(region) == posts, "the peer logged a request for arguments the bridge refused"
    assert peer.tool_runs(region, spec.with_schema.tool) == runs

    again = await functions.call_tool(spec.with_schema.tool, spec.with_schema.arguments)
    assert again.status == 200, again.body
    assert peer.posts(region) > posts, f"the peer's log counts its requests ({spec.posts!r})"
    cell.note(f"{len(tools)} tools listed; invalid arguments: 400, 0 requests reached the peer")
