"""No Trubrics code at all: the OpenTelemetry launcher picks the exporter by name.

::

    pip install trubrics-otel openai opentelemetry-distro opentelemetry-instrumentation-openai-v2
    export TRUBRICS_API_KEY=...  OPENAI_API_KEY=...
    OTEL_TRACES_EXPORTER=trubrics \\
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only \\
        opentelemetry-instrument python examples/zero_code_app.py

Without the two marked lines every call is an event of the anonymous user
(``"anonymous"``); with them, calls inside ``user_context`` belong to that user.
"""

import os

import openai
from opentelemetry import trace

from trubrics_otel import UserContextSpanProcessor, user_context  # optional

provider = trace.get_tracer_provider()  # the one opentelemetry-instrument set up
if hasattr(provider, "add_span_processor"):  # optional
    provider.add_span_processor(UserContextSpanProcessor())

client = openai.OpenAI()
with user_context(user_id="u1", thread_id="t-42"):
    reply = client.chat.completions.create(
        model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
        messages=[{"role": "user", "content": "Say hello"}],
    )
print(reply.choices[0].message.content)
