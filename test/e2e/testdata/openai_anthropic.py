"""Calls an Anthropic model through Tollgate with the official OpenAI Python SDK.

Usage: python3 openai_anthropic.py BASE_URL CA_FILE MODEL; the virtual key comes from the
TOLLGATE_KEY environment variable (never argv). Makes seven calls in order (plain, streamed
without and with include_usage, a tool call, its result, a streamed tool call, and one the
provider refuses) and prints what the SDK parsed from each as one JSON object.
"""
import json
import os
import sys

import openai

base, ca, model = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(
    base_url=base + "/v1",
    api_key=os.environ["TOLLGATE_KEY"],
    http_client=openai.DefaultHttpxClient(verify=ca),
    max_retries=0,
)
out = {}

r = client.chat.completions.create(
    model=model, max_tokens=64, temperature=0.5, stop="STOP", user="e2e-user",
    messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}],
)
out["plain"] = {
    "id": r.id, "object": r.object, "model": r.model, "content": r.choices[0].message.content,
    "finish_reason": r.choices[0].finish_reason, "usage": r.usage.model_dump(exclude_none=True),
}


def stream(**kw):
    parts, finish, usage, empty, calls = [], None, None, 0, {}
    for chunk in client.chat.completions.create(model=model, stream=True, **kw):
        if chunk.usage is not None:
            usage = chunk.usage.model_dump(exclude_none=True)
        if not chunk.choices:
            empty += 1
            continue
        c = chunk.choices[0]
        parts.append(c.delta.content or "")
        for tc in c.delta.tool_calls or []:
            call = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            if tc.id:
                call["id"] = tc.id
            if tc.function and tc.function.name:
                call["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                call["arguments"] += tc.function.arguments
        finish = c.finish_reason or finish
    return {"content": "".join(parts), "finish_reason": finish, "usage": usage, "chunks_without_choices": empty,
            "tool_calls": [calls[i] for i in sorted(calls)]}


hello = [{"role": "user", "content": "Say hello"}]
out["stream"] = stream(messages=hello)
out["stream_usage"] = stream(messages=hello, max_completion_tokens=32, stream_options={"include_usage": True})

tools = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
ask = [{"role": "user", "content": "What is the weather in Paris?"}]
r = client.chat.completions.create(model=model, max_tokens=64, messages=ask, tools=tools, tool_choice="required",
                                   parallel_tool_calls=False)
m = r.choices[0].message
calls = [{"id": c.id, "type": c.type, "name": c.function.name, "arguments": c.function.arguments} for c in m.tool_calls]
out["tool"] = {"finish_reason": r.choices[0].finish_reason, "content": m.content, "tool_calls": calls}

r = client.chat.completions.create(model=model, max_tokens=64, tools=tools, messages=ask + [
    m.model_dump(exclude_none=True),
    {"role": "tool", "tool_call_id": calls[0]["id"], "content": "18 degrees and sunny"},
])
out["tool_result"] = {"finish_reason": r.choices[0].finish_reason, "content": r.choices[0].message.content}

out["tool_stream"] = stream(messages=ask, max_tokens=64, tools=tools,
                            tool_choice={"type": "function", "function": {"name": "get_weather"}})
try:
    client.chat.completions.create(model=model, max_tokens=0, messages=hello)
    out["error"] = None
except openai.APIStatusError as e:
    out["error"] = {"class": type(e).__name__, "status": e.status_code, "code": e.code, "type": e.type,
                    "message": e.message}
print(json.dumps(out))
