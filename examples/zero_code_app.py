"""No Trubrics code at all: the OpenTelemetry launcher picks the exporter by name.

::

    python3 -m venv .venv && .venv/bin/pip install -q -e '.[examples]'   # from the repo's root
    . .venv/bin/activate
    export TRUBRICS_API_KEY=...  OPENAI_API_KEY=...   # OPENAI_BASE_URL for a compatible server
    OTEL_TRACES_EXPORTER=trubrics opentelemetry-instrument python examples/zero_code_app.py

No metrics or logs exporter needs setting: trubrics-otel's distro (``[zero-code]``) defaults
them to ``none``, and turns on message-content capture (``span_only``) unless
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is set. With ``opentelemetry-distro``
installed too, add ``OTEL_PYTHON_DISTRO=trubrics``.

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
