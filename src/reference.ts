/**
 * The reference of every variable and metric, made from the lists that the code itself reads:
 * VARIABLES (src/config.ts), OTEL_VARIABLES (src/otel/config.ts) and METRICS
 * (src/otel/metric-names.ts). --help prints it as text; the README carries it as Markdown between
 * markers, written by `npm run docs` and checked by test/unit/readme-reference.test.ts.
 */
import { VARIABLES, type Variable } from './config';
import { CLIENT_ATTRIBUTES, METRICS, SERVER_ATTRIBUTES, type MetricName } from './otel/metric-names';
import { OTEL_VARIABLES } from './otel/config';
import { prometheusName } from './otel/prometheus-names';

export const AGENT_VARIABLES_TITLE = 'Agent variables (an invalid value stops start-up)';
export const OTEL_VARIABLES_TITLE =
  'OpenTelemetry variables (as the OpenTelemetry specification defines them; an invalid value is reported and its default used)';

/** One aligned row per variable. */
function textTable(variables: Variable[]): string {
  const width = Math.max(...variables.map((v) => v.name.length));
  return variables.map((v) => `  ${v.name.padEnd(width)}  ${v.meaning} (default: ${v.default || 'unset'})`).join('\n');
}

/** Both variable lists, for --help. */
export function helpVariables(): string {
  return `${AGENT_VARIABLES_TITLE}:\n${textTable(VARIABLES)}\n\n${OTEL_VARIABLES_TITLE}:\n${textTable(OTEL_VARIABLES)}`;
}

/** One line per metric, for --help: its OTLP name, kind and unit, and its Prometheus name. */
export function helpMetrics(): string {
  const width = Math.max(...METRICS.map((m) => m.name.length));
  return METRICS.map((m) => `  ${m.name.padEnd(width)}  ${m.kind}, ${m.unit}  (Prometheus: ${prometheusName(m)})`).join(
    '\n',
  );
}

const cell = (text: string) => text.replace(/\|/g, '\\|');
const code = (text: string) => `\`${text}\``;

function markdownVariables(variables: Variable[]): string {
  const rows = variables.map(
    (v) => `| ${code(v.name)} | ${v.default === '' ? 'unset' : code(v.default)} | ${cell(v.meaning)} |`,
  );
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

/** The README's variable tables (between <!-- variables --> markers). */
export function markdownVariableTables(): string {
  return [
    `**${AGENT_VARIABLES_TITLE}**`,
    '',
    markdownVariables(VARIABLES),
    '',
    `**${OTEL_VARIABLES_TITLE}**`,
    '',
    markdownVariables(OTEL_VARIABLES),
  ].join('\n');
}

function attributesCell(m: MetricName): string {
  if (m.attributes.length === 0) return '–';
  if (m.attributes.join() === SERVER_ATTRIBUTES.join()) return 'S';
  if (m.attributes.join() === CLIENT_ATTRIBUTES.join()) return 'C';
  return m.attributes.map(code).join(', ');
}

/** The README's metric table (between <!-- metrics --> markers). */
export function markdownMetricTable(): string {
  const rows = METRICS.map(
    (m) =>
      `| ${code(m.name)} | ${m.kind} | ${code(m.unit)} | ${attributesCell(m)} | ${cell(m.description)} | ${code(prometheusName(m))} |`,
  );
  return [
    `- S = ${SERVER_ATTRIBUTES.map(code).join(', ')} (each when known)`,
    `- C = ${CLIENT_ATTRIBUTES.map(code).join(', ')} (each when known)`,
    '',
    '| metric | type | unit | attributes | what | Prometheus |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

/** README blocks by marker name: `<!-- name -->` ... `<!-- /name -->`. */
export const README_BLOCKS: Record<string, () => string> = {
  variables: markdownVariableTables,
  metrics: markdownMetricTable,
};

/** The README with every block rewritten from the lists; throws when a marker is missing. */
export function withReference(readme: string): string {
  let out = readme;
  for (const [name, render] of Object.entries(README_BLOCKS)) {
    const open = `<!-- ${name} -->`;
    const close = `<!-- /${name} -->`;
    const start = out.indexOf(open);
    const end = out.indexOf(close);
    if (start < 0 || end < start) throw new Error(`README: the ${open} ... ${close} block is missing`);
    out = `${out.slice(0, start + open.length)}\n${render()}\n${out.slice(end)}`;
  }
  return out;
}
