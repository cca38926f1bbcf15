/** The OpenTelemetry output: spans and RED metrics over OTLP. */
export { createTelemetry, type Telemetry, type TelemetryStats, type TelemetryOverrides } from './telemetry';
