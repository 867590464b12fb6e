"""Record AWS Bedrock fixtures: boto3 ``bedrock-runtime`` under OpenLLMetry's Bedrock instrumentation.

Writes ``tests/fixtures/spans/bedrock-openllmetry/<case>.json``; boto3 talks to
``tests/fake_bedrock.py`` (dummy credentials, us-east-1, no retries)::

    python -m venv /tmp/bedrock-venv && /tmp/bedrock-venv/bin/pip install \
        boto3==1.44.8 opentelemetry-sdk==1.45.2 opentelemetry-instrumentation-bedrock==0.62.4
    /tmp/bedrock-venv/bin/python tests/recorders/bedrock.py
"""

from __future__ import annotations

import json
from typing import Any

from recording import (  # noqa: I001  (puts tests/ on sys.path)
    SDK_LAYOUT,
    Recorder,
    llm_event,
    tool_event,
)
import fake_bedrock as fake  # noqa: E402

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
INVOKE_RESPONSE_MODEL = "claude-3-5-sonnet-20240620"
# OpenLLMetry strips the vendor prefix ("anthropic.") from the modelId: the spans only know this.
SPAN_MODEL = "claude-3-5-sonnet-20240620-v1:0"
SYSTEM = [{"text": "You are terse."}]
WEATHER_TOOL = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
}
SCOPE = "opentelemetry.instrumentation.bedrock"
PROVIDER = "aws.bedrock"


def is_llm_span(span: dict[str, Any]) -> bool:
    return span["scope"] == SCOPE


def event(prompt: str | None, generation: str | None, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("model", SPAN_MODEL)
    return llm_event(prompt=prompt, generation=generation, provider=PROVIDER, **kwargs)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"text": text}]}


def record() -> None:
    import boto3
    from botocore.config import Config
    from opentelemetry.instrumentation.bedrock import BedrockInstrumentor

    recorder = Recorder("bedrock-openllmetry", SDK_LAYOUT)
    BedrockInstrumentor().instrument(tracer_provider=recorder.provider)
    with fake.FakeBedrock() as server:
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="AKIDFAKE",
            aws_secret_access_key="fake-secret",
            config=Config(retries={"total_max_attempts": 1}),
        )

        with recorder.case("chat") as case:
            with recorder.request_span():
                client.converse(
                    modelId=MODEL,
                    system=SYSTEM,
                    messages=[user("Say hello")],
                    inferenceConfig={"maxTokens": 100, "temperature": 0.2},
                )
            case.expect(
                llm_events=[event("Say hello", "Echo: Say hello", input_tokens=5, output_tokens=3)],
                llm_spans=is_llm_span,
                notes="converse. user/thread only on the app's 'handle request' span. Converse returns no "
                "response model: assistant_id = the request modelId as the span has it, i.e. WITHOUT the "
                "'anthropic.' vendor prefix the app passed (span name 'chat <model>'). System prompt only in "
                "gen_ai.system_instructions, status stays UNSET on success.",
            )

        with recorder.case("cache") as case:
            with recorder.request_span():
                client.converse(
                    modelId=MODEL,
                    system=[*SYSTEM, {"cachePoint": {"type": "default"}}],
                    messages=[user("Say hello again")],
                )
            case.expect(
                llm_events=[
                    event(
                        "Say hello again",
                        "Echo: Say hello again",
                        input_tokens=6 + 1200 + 300,
                        output_tokens=4,
                        cache_read=1200,
                        cache_creation=300,
                    )
                ],
                llm_spans=is_llm_span,
                notes="Bedrock usage inputTokens=6 EXCLUDES cacheReadInputTokens=1200 and "
                "cacheWriteInputTokens=300: expected input_tokens normalised to 1506. If the span has no "
                "cache attributes, the reader cannot recover them (then the fixture shows a gap).",
            )

        with recorder.case("stream") as case:
            with recorder.request_span():
                response = client.converse_stream(
                    modelId=MODEL, system=SYSTEM, messages=[user("Count to three")]
                )
                for _ in response["stream"]:
                    pass
            case.expect(
                llm_events=[
                    event("Count to three", "Echo: Count to three", input_tokens=6, output_tokens=4)
                ],
                llm_spans=is_llm_span,
                notes="converse_stream: usage in the final 'metadata' event. OpenLLMetry records no time to first "
                "token and no response id/model for streams: time_to_first_token unknown (null).",
            )

        with recorder.case("invoke_model") as case:
            with recorder.request_span():
                body = {
                    "anthropic_version": "bedrock-2023-05-31",
                    "max_tokens": 100,
                    "system": "You are terse.",
                    "messages": [{"role": "user", "content": "Say hello"}],
                }
                response = client.invoke_model(modelId=MODEL, body=json.dumps(body))
                response["body"].read()
            case.expect(
                llm_events=[
                    event(
                        "Say hello",
                        "Echo: Say hello",
                        input_tokens=5,
                        output_tokens=3,
                        model=INVOKE_RESPONSE_MODEL,
                    )
                ],
                llm_spans=is_llm_span,
                notes="invoke_model with an Anthropic-on-Bedrock body (anthropic_version bedrock-2023-05-31); "
                "the response body is Anthropic's Messages response (model claude-3-5-sonnet-20240620, "
                "usage input/output/cache_* = 0, which the span does not copy), counts also in "
                "X-Amzn-Bedrock-*-Token-Count headers. Here the span has gen_ai.response.model/id.",
            )

        with recorder.case("tool_call") as case:
            with recorder.request_span():
                tool_round(client, recorder)
            case.expect(
                llm_events=[
                    event(
                        "Weather in Paris?",
                        'tool_call: get_weather({"city": "Paris"})',
                        input_tokens=3,
                        output_tokens=2,
                    ),
                    event("Weather in Paris?", fake.TOOL_ANSWER, input_tokens=3, output_tokens=5),
                ],
                events=[tool_event(fake.TOOL_USE_ID)],
                llm_spans=is_llm_span,
                notes="converse with toolConfig -> toolUse get_weather (toolUseId tooluse_fake_0001), stop "
                "tool_use; the app runs the tool in its own 'execute_tool get_weather' span, then sends a "
                "toolResult (user role): 2nd prompt = the last user TEXT.",
            )

        with recorder.case("error") as case:
            with recorder.request_span():
                try:
                    client.converse(modelId="fail-500", messages=[user("Break")])
                except client.exceptions.InternalServerException:
                    pass
            case.expect(
                # no prompt: OpenLLMetry writes gen_ai.input.messages only after a successful call
                llm_events=[event(None, None, model="fail-500", error="InternalServerException")],
                llm_spans=is_llm_span,
                notes="HTTP 500 InternalServerException (x-amzn-ErrorType), botocore retries off.",
            )


def tool_round(client: Any, recorder: Recorder) -> None:
    """An app's manual Converse tool loop: ask, run the tool, answer."""
    messages = [user("Weather in Paris?")]
    tools = {"tools": [WEATHER_TOOL]}
    first = client.converse(modelId=MODEL, messages=messages, toolConfig=tools)
    assistant = first["output"]["message"]
    call = next(b["toolUse"] for b in assistant["content"] if "toolUse" in b)
    with recorder.tracer.start_as_current_span(
        "execute_tool get_weather",
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call["name"],
            "gen_ai.tool.call.id": call["toolUseId"],
        },
    ):
        result = "Sunny, 21C"
    messages += [
        assistant,
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": call["toolUseId"], "content": [{"text": result}]}}
            ],
        },
    ]
    client.converse(modelId=MODEL, messages=messages, toolConfig=tools)


if __name__ == "__main__":
    record()
