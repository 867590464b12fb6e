"""An app that already traces its OpenAI calls: add Trubrics analytics with ``configure``.

::

    python3 -m venv .venv && .venv/bin/pip install -q -e '.[examples]'   # from the repo's root
    export TRUBRICS_API_KEY=...  OPENAI_API_KEY=...   # OPENAI_BASE_URL for a compatible server
    .venv/bin/python examples/existing_tracing.py

Each chat call becomes one Trubrics LLM event for user ``u1`` in thread ``t-42``. The
same works with OpenLLMetry or OpenInference: swap the instrumentor import, e.g.
``from openinference.instrumentation.openai import OpenAIInstrumentor``.
"""

import os

import openai
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider

from trubrics_otel import configure, user_context

# The app's own tracing, as it already was.
os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
provider = TracerProvider()
logger_provider = LoggerProvider()  # only needed when content is captured as events
OpenAIInstrumentor().instrument(tracer_provider=provider, logger_provider=logger_provider)

# The one added call.
exporter = configure(tracer_provider=provider, logger_provider=logger_provider)

client = openai.OpenAI()
with user_context(user_id="u1", thread_id="t-42", properties={"plan": "pro"}):
    reply = client.chat.completions.create(
        model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
        messages=[{"role": "user", "content": "Say hello"}],
    )
print(reply.choices[0].message.content)

provider.shutdown()  # flushes the last events
print(exporter.stats())
