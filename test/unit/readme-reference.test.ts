/**
 * The README's variable and metric tables are the lists the code reads (src/reference.ts), and
 * --help prints the same lists: `npm run docs` rewrites the README when this fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { VARIABLES } from '../../src/config';
import { OTEL_VARIABLES } from '../../src/otel/config';
import { METRICS } from '../../src/otel/metric-names';
import { prometheusName } from '../../src/otel/prometheus-names';
import { withReference } from '../../src/reference';

const ROOT = path.join(__dirname, '..', '..');
const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

test('the README tables are generated from the variable and metric lists (npm run docs)', () => {
  assert.equal(readme, withReference(readme), 'README.md differs from the lists: run `npm run docs`');
});

test('every variable and metric is in the README once, and in --help', () => {
  const help = execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli.ts'), '--help'], {
    encoding: 'utf8',
  });
  for (const v of [...VARIABLES, ...OTEL_VARIABLES]) {
    assert.equal(readme.split(`| \`${v.name}\` |`).length, 2, `${v.name}: one README row`);
    assert.ok(help.includes(`  ${v.name} `), `${v.name} in --help`);
  }
  for (const m of METRICS) {
    assert.equal(readme.split(`| \`${m.name}\` |`).length, 2, `${m.name}: one README row`);
    assert.ok(help.includes(`  ${m.name} `) && help.includes(prometheusName(m)), `${m.name} in --help`);
  }
});

test('a README that drifted is caught, and one without the markers is refused', () => {
  const drifted = readme.replace(/\| `LOG_LEVEL` \| `info` \|/, '| `LOG_LEVEL` | `debug` |');
  assert.notEqual(drifted, readme, 'the row exists');
  assert.notEqual(withReference(drifted), drifted, 'a changed default is rewritten');
  assert.throws(() => withReference('# no markers'), /block is missing/);
});
