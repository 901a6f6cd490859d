"""The most common OpenAI streaming loop, run against Tollgate with the official SDK.

Usage: python3 openai_stream_loop.py BASE_URL CA_FILE MODEL; the virtual key comes from the
TOLLGATE_KEY environment variable (never argv). Prints the streamed answer; fails (a Python
traceback, non-zero exit) if any chunk has no choices, as a chunk Tollgate added would.
"""
import os
import sys

import openai

base, ca, model = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(
    base_url=base + "/v1",
    api_key=os.environ["TOLLGATE_KEY"],
    http_client=openai.DefaultHttpxClient(verify=ca),
)
stream = client.chat.completions.create(model=model, stream=True, messages=[{"role": "user", "content": "Hello"}])
parts = []
for chunk in stream:
    parts.append(chunk.choices[0].delta.content or "")
print("".join(parts))
