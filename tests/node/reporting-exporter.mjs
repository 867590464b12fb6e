// A span exporter wrapper that counts what the receiver accepted, shared by the apps here.
//
// The OpenTelemetry JS SDK drops a refused export with only a diag log (and a rejected
// shutdown), so an app that must tell its caller whether the spans arrived wraps its exporter:
//
//   const exporter = new ReportingExporter(new OTLPTraceExporter({ url }));
//   ... new BatchSpanProcessor(exporter) ...
//   await shutdownReporting(sdk, exporter);
//   exporter.report; // {exported: 4, failed: 0, errors: []}
//
// No imports: each app resolves its own @opentelemetry packages.

const SUCCESS = 0; // ExportResultCode.SUCCESS in @opentelemetry/core

export class ReportingExporter {
  constructor(inner) {
    this.inner = inner;
    this.report = { exported: 0, failed: 0, errors: [] };
  }

  export(spans, done) {
    this.inner.export(spans, (result) => {
      if (result.code === SUCCESS) {
        this.report.exported += spans.length;
      } else {
        this.report.failed += spans.length;
        this.report.errors.push(String(result.error?.message ?? result.error ?? 'export failed'));
      }
      done(result);
    });
  }

  shutdown() {
    return this.inner.shutdown();
  }

  forceFlush() {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** Shut the SDK down (flushing every span); a refused export is in the report, not thrown. */
export async function shutdownReporting(sdk, exporter) {
  try {
    await sdk.shutdown();
  } catch (error) {
    if (!exporter.report.failed) exporter.report.errors.push(String(error?.message ?? error));
  }
}
