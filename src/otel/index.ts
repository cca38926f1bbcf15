/** The OpenTelemetry output: spans and RED metrics over OTLP. */
export { createTelemetry, type Telemetry, type TelemetryStats, type TelemetryOverrides } from './telemetry';
export type { HttpSeriesReader, RequestTotals, ServerFamily } from './http-metrics';
export type { SelfStats } from './metrics';
