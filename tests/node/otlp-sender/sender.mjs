// Send spans through the real OpenTelemetry Node SDK and its OTLP/HTTP trace exporters.
//
//   node sender.mjs <proto|json> <traces-url> <n>
//
// `proto` uses @opentelemetry/exporter-trace-otlp-proto (application/x-protobuf), `json`
// @opentelemetry/exporter-trace-otlp-http (application/json). It creates n spans; every
// fourth one (the first included) is a GenAI chat call carrying gen_ai.* attributes, messages
// and user.id / session.id, the others are plain app spans. The standard OTEL_EXPORTER_OTLP_*
// variables still apply (e.g. OTEL_EXPORTER_OTLP_COMPRESSION=gzip, OTEL_EXPORTER_OTLP_HEADERS).
// It flushes before exiting and prints one JSON line: what it sent, and `export: {exported,
// failed, errors}`, what the receiver accepted.

import { SpanKind, trace } from '@opentelemetry/api';
import { OTLPTraceExporter as HttpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

import { ReportingExporter, shutdownReporting } from '../reporting-exporter.mjs';

const EXPORTERS = { proto: ProtoExporter, json: HttpJsonExporter };
const MODEL = 'gpt-4o-mini';

function genAiAttributes(index) {
  const question = `Question number ${index}?`;
  const answer = `Answer number ${index}.`;
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': MODEL,
    'gen_ai.response.model': `${MODEL}-2024-07-18`,
    'gen_ai.response.id': `chatcmpl-sender-${index}`,
    'gen_ai.usage.input_tokens': 12,
    'gen_ai.usage.output_tokens': 5,
    'gen_ai.input.messages': JSON.stringify([
      { role: 'user', parts: [{ type: 'text', content: question }] },
    ]),
    'gen_ai.output.messages': JSON.stringify([
      { role: 'assistant', parts: [{ type: 'text', content: answer }], finish_reason: 'stop' },
    ]),
    'user.id': 'u1',
    'session.id': 't-42',
  };
}

async function main() {
  const [protocol, url, countText] = process.argv.slice(2);
  const count = Number.parseInt(countText ?? '', 10);
  if (!EXPORTERS[protocol] || !url || !(count >= 0)) {
    console.error('usage: node sender.mjs <proto|json> <traces-url> <n>');
    process.exitCode = 2;
    return;
  }
  const exporter = new ReportingExporter(new EXPORTERS[protocol]({ url }));
  const sdk = new NodeSDK({
    autoDetectResources: false,
    resource: resourceFromAttributes({ 'service.name': 'otlp-sender' }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  sdk.start();
  const tracer = trace.getTracer('trubrics-otel-otlp-sender');
  const sent = [];
  for (let index = 0; index < count; index += 1) {
    const genAi = index % 4 === 0;
    const name = genAi ? `chat ${MODEL}` : `work ${index}`;
    const kind = genAi ? SpanKind.CLIENT : SpanKind.INTERNAL;
    const span = tracer.startSpan(name, { kind, attributes: genAi ? genAiAttributes(index) : { index } });
    const { traceId, spanId } = span.spanContext();
    span.end();
    sent.push({ name, trace_id: traceId, span_id: spanId, genai: genAi });
  }
  await shutdownReporting(sdk, exporter); // every span has been answered by the time we print
  const report = { protocol, url, count: sent.length, spans: sent, export: exporter.report };
  console.log(JSON.stringify(report));
}

await main();
