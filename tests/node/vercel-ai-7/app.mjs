// A real Node app using the Vercel AI SDK 7 with its OpenTelemetry telemetry turned on: the
// ai 6 app (../vercel-ai/app.mjs) ported. In ai 7 spans come from @ai-sdk/otel, registered with
// registerTelemetry() AFTER the tracer provider is (registered before it, nothing is exported),
// and the user and session are the call's `runtimeContext`, included by
// `telemetry.includeRuntimeContext` (the `metadata` telemetry setting is gone).
//
//
// It runs ONE case against an OpenAI-compatible server, exports every span with the OTLP/HTTP
// protobuf exporter of @opentelemetry/sdk-node, and flushes before it exits:
//
//   node app.mjs <case> --otlp-url http://127.0.0.1:4318/v1/traces \
//                       --openai-url http://127.0.0.1:8000/v1
//
// (--sequential-ids makes trace and span ids predictable, for fixtures.)
// Cases: chat, stream, error, error_retries, tool_call, stream_tool_call, object, nested.
// All but `nested` pass the SDK's own user mechanism,
// `runtimeContext: {userId: 'u1', sessionId: 't-42'}` (see telemetry()); `nested` passes no
// metadata and runs inside the app's own SERVER span `handle request` carrying `user.id` and
// `session.id`, the way a web app would. It prints one JSON line: what the app got back, and
// `export: {exported, failed, errors}`, how many spans the OTLP receiver accepted.
// Recorded by `tests/recorders/vercel_ai.py --app vercel-ai-7`.

import { parseArgs } from 'node:util';

import { createOpenAI } from '@ai-sdk/openai';
import { SpanKind, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { generateObject, generateText, registerTelemetry, stepCountIs, streamText, tool } from 'ai';
import { OpenTelemetry } from '@ai-sdk/otel';
import { z } from 'zod';

import { ReportingExporter, shutdownReporting } from '../reporting-exporter.mjs';

const USER_ID = 'u1';
const SESSION_ID = 't-42';
const MODEL = 'gpt-4o-mini';
const FAIL_MODEL = 'fail-500'; // the fake server answers HTTP 500 for this model
const SYSTEM = 'You are a terse assistant.';

const { positionals, values: options } = parseArgs({
  allowPositionals: true,
  options: {
    'otlp-url': { type: 'string' },
    'openai-url': { type: 'string' },
    'function-id': { type: 'string', default: 'fixture-app' },
    'service-name': { type: 'string', default: 'vercel-ai-fixture-app' },
    'sequential-ids': { type: 'boolean', default: false },
  },
});

/** The call's telemetry options; `runtimeContext` is how an AI SDK 7 app names its user and session. */
function telemetry(caseName, { withMetadata = true } = {}) {
  const functionId = `${options['function-id']}.${caseName}`;
  if (!withMetadata) return { telemetry: { functionId } };
  return {
    telemetry: { functionId, includeRuntimeContext: { userId: true, sessionId: true } },
    runtimeContext: { userId: USER_ID, sessionId: SESSION_ID },
  };
}

/** Trace ids 1, 2, ... and span ids 0x1001, 0x1002, ...: re-recorded fixtures diff cleanly. */
class SequentialIdGenerator {
  #traces = 0;
  #spans = 0x1000;
  generateTraceId() {
    return (++this.#traces).toString(16).padStart(32, '0');
  }
  generateSpanId() {
    return (++this.#spans).toString(16).padStart(16, '0');
  }
}

const weatherTool = tool({
  description: 'Current weather in a city',
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => ({ city, forecast: 'sunny', temperature_c: 21 }),
});

/** Each case does what an app would do with the result, and returns what it got. */
const CASES = {
  async chat(openai) {
    const result = await generateText({
      model: openai.chat(MODEL),
      system: SYSTEM,
      prompt: 'What is OpenTelemetry?',
      ...telemetry('chat'),
    });
    return { text: result.text, usage: result.usage };
  },

  async stream(openai) {
    const result = streamText({
      model: openai.chat(MODEL),
      system: SYSTEM,
      prompt: 'Tell me a story',
      ...telemetry('stream'),
    });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    return { text, usage: await result.usage };
  },

  async error(openai) {
    return failingCall(openai, 'error', { maxRetries: 0 });
  },

  // The SDK's default: two retries of a 5xx, each attempt its own model call.
  async error_retries(openai) {
    return failingCall(openai, 'error_retries', {});
  },

  async tool_call(openai) {
    const result = await generateText({
      model: openai.chat(MODEL),
      prompt: 'Weather in Paris?',
      tools: { get_weather: weatherTool },
      stopWhen: stepCountIs(2),
      ...telemetry('tool_call'),
    });
    return { text: result.text, steps: result.steps.length, usage: result.totalUsage };
  },

  async stream_tool_call(openai) {
    const result = streamText({
      model: openai.chat(MODEL),
      prompt: 'Weather in Paris?',
      tools: { get_weather: weatherTool },
      stopWhen: stepCountIs(2),
      ...telemetry('stream_tool_call'),
    });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    return { text, steps: (await result.steps).length, usage: await result.totalUsage };
  },

  async object(openai) {
    const result = await generateObject({
      model: openai.chat(MODEL),
      schema: z.object({ city: z.string(), forecast: z.string() }),
      prompt: 'Weather in Paris as JSON',
      ...telemetry('object'),
    });
    return { object: result.object, usage: result.usage };
  },

  async nested(openai) {
    const tracer = trace.getTracer('vercel-ai-fixture-app');
    const attributes = { 'user.id': USER_ID, 'session.id': SESSION_ID, 'http.route': '/chat' };
    return tracer.startActiveSpan('handle request', { kind: SpanKind.SERVER, attributes }, async (span) => {
      try {
        const result = await generateText({
          model: openai.chat(MODEL),
          system: SYSTEM,
          prompt: 'What is OpenTelemetry?',
          ...telemetry('nested', { withMetadata: false }),
        });
        return { text: result.text, usage: result.usage };
      } finally {
        span.end();
      }
    });
  },
};

/** A call the provider fails; the app catches the error, as a web app's handler would. */
async function failingCall(openai, caseName, { maxRetries }) {
  try {
    await generateText({
      model: openai.chat(FAIL_MODEL),
      system: SYSTEM,
      prompt: 'This call fails',
      ...(maxRetries === undefined ? {} : { maxRetries }),
      ...telemetry(caseName),
    });
    return { error: null };
  } catch (error) {
    return { error: error.name, message: error.message };
  }
}

async function main() {
  const [caseName] = positionals;
  if (!CASES[caseName] || !options['otlp-url'] || !options['openai-url']) {
    console.error(
      `usage: node app.mjs <${Object.keys(CASES).join('|')}> --otlp-url URL --openai-url URL`,
    );
    process.exitCode = 2;
    return;
  }
  const exporter = new ReportingExporter(new OTLPTraceExporter({ url: options['otlp-url'] }));
  const sdk = new NodeSDK({
    autoDetectResources: false, // host / process attributes would make every recording differ
    resource: resourceFromAttributes({ 'service.name': options['service-name'] }),
    ...(options['sequential-ids'] ? { idGenerator: new SequentialIdGenerator() } : {}),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  sdk.start();
  registerTelemetry(new OpenTelemetry({ runtimeContext: true, usage: true }));
  const openai = createOpenAI({ baseURL: options['openai-url'], apiKey: 'sk-fake-not-a-key' });
  let outcome;
  try {
    outcome = await CASES[caseName](openai);
  } finally {
    await shutdownReporting(sdk, exporter); // every span has been answered after this
  }
  console.log(JSON.stringify({ case: caseName, ...outcome, export: exporter.report }));
}

await main();
