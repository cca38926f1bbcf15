import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { VARIABLES, loadConfig } from '../../src/config';
import { OTEL_VARIABLES } from '../../src/otel/config';

test('--help prints both variable tables from the lists that parse them', () => {
  const help = execFileSync(
    process.execPath,
    ['--import', 'tsx', path.join(__dirname, '..', '..', 'src', 'cli.ts'), '--help'],
    {
      encoding: 'utf8',
    },
  );
  for (const v of [...VARIABLES, ...OTEL_VARIABLES]) {
    const row = help.split('\n').find((l) => l.trimStart().startsWith(`${v.name} `));
    assert.ok(row, `${v.name} listed`);
    assert.ok(row.includes(v.meaning), `${v.name}: its meaning`);
    assert.ok(row.includes(`(default: ${v.default || 'unset'})`), `${v.name}: its default`);
  }
  assert.equal(help.includes('NGINX_UPROBES'), false, 'the nginx request uprobes are gone');
});

test('every agent variable has the default the list says', () => {
  const config = loadConfig({});
  assert.equal(config.statsIntervalMs, 10_000);
  assert.deepEqual(config.ignorePorts, [8001, 8444, 8002, 8445]);
  assert.equal('nginxUprobes' in config, false, 'no NGINX_UPROBES setting');
});
