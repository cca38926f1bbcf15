/**
 * The header is the contract with the kernel side: compile it with gcc and check every size,
 * offset and constant the TypeScript mirror uses. Fails (never skips) when gcc is missing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ALL_STRUCTS, C_CONSTANTS, DATA, DATA_HEAD_SIZE } from '../../src/capture/records';

const HEADER_PATH = resolve(__dirname, '../../bpf/kong_watcher_events.h');

let dir = '';
const actual = new Map<string, number>();

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kw-pipeline-layout-'));
  const lines: string[] = [];
  for (const s of ALL_STRUCTS) {
    lines.push(`printf("S %s %zu\\n", "${s.struct}", sizeof(struct ${s.struct}));`);
    for (const name of Object.keys(s.fields)) {
      lines.push(
        `printf("F %s.%s %zu %zu\\n", "${s.struct}", "${name}", offsetof(struct ${s.struct}, ${name}), ` +
          `sizeof(((struct ${s.struct} *)0)->${name}));`,
      );
    }
  }
  for (const name of Object.keys(C_CONSTANTS)) lines.push(`printf("C %s %lld\\n", "${name}", (long long)(${name}));`);
  const src = `#include <stdio.h>\n#include <stddef.h>\n#include "${HEADER_PATH}"\nint main(void) {\n${lines.join('\n')}\nreturn 0;\n}\n`;
  writeFileSync(join(dir, 'layout.c'), src);
  execFileSync('gcc', ['-std=c11', '-Wall', '-Werror', '-o', join(dir, 'layout'), join(dir, 'layout.c')]);
  const out = execFileSync(join(dir, 'layout'), { encoding: 'utf8' });
  for (const line of out.trim().split('\n')) {
    const [kind, name, a, b] = line.split(' ');
    if (kind === 'S') actual.set(`sizeof ${name}`, Number(a));
    if (kind === 'F') {
      actual.set(`offsetof ${name}`, Number(a));
      actual.set(`sizeof ${name}`, Number(b));
    }
    if (kind === 'C') actual.set(name, Number(a));
  }
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('every struct size matches the header', () => {
  for (const s of ALL_STRUCTS) {
    assert.equal(s.size, actual.get(`sizeof ${s.struct}`), `sizeof(struct ${s.struct})`);
    assert.equal(s.size % 8, 0, `struct ${s.struct} size is 8-byte aligned`);
  }
});

test('every field offset and size matches the header', () => {
  for (const s of ALL_STRUCTS) {
    for (const [name, field] of Object.entries(s.fields)) {
      assert.equal(field.offset, actual.get(`offsetof ${s.struct}.${name}`), `offsetof(${s.struct}, ${name})`);
      assert.equal(field.size, actual.get(`sizeof ${s.struct}.${name}`), `sizeof(${s.struct}.${name})`);
    }
  }
});

test('fields tile each struct with no hidden padding', () => {
  for (const s of ALL_STRUCTS) {
    const fields = Object.values(s.fields).sort((x, y) => x.offset - y.offset);
    let at = 0;
    for (const fl of fields) {
      assert.equal(fl.offset, at, `${s.struct}: a field starts at ${at}`);
      at += fl.size;
    }
    assert.equal(at, s.size, `${s.struct}: fields end at sizeof`);
  }
});

test('the mirror lists every field the header declares', () => {
  const text = readFileSync(HEADER_PATH, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
  const structRe = /struct\s+(kw_\w+)\s*\{([^}]*)\}\s*;/g;
  const declared = new Map<string, string[]>();
  for (let m = structRe.exec(text); m; m = structRe.exec(text)) {
    const names = m[2]
      .split(';')
      .map((decl) => decl.trim())
      .filter(Boolean)
      .map((decl) => /(\w+)\s*(\[[^\]]*\])?$/.exec(decl)![1]);
    declared.set(m[1], names);
  }
  const mirrored = new Map(ALL_STRUCTS.map((s) => [s.struct, Object.keys(s.fields)]));
  assert.deepEqual([...declared.keys()].sort(), [...mirrored.keys()].sort(), 'the same structs on both sides');
  for (const [name, fields] of declared) assert.deepEqual(mirrored.get(name), fields, `fields of struct ${name}`);
});

test('every constant matches the header, and the header has no unmirrored KW_ constants', () => {
  for (const [name, value] of Object.entries(C_CONSTANTS)) assert.equal(value, actual.get(name), name);
  const text = readFileSync(HEADER_PATH, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
  const names = new Set([...text.matchAll(/\b(KW_[A-Z0-9_]+)\s*(=|\d|0x)/g)].map((m) => m[1]));
  for (const name of names) assert.ok(name in C_CONSTANTS, `${name} is mirrored in records.ts`);
});

test('DATA payload starts right after the fixed part', () => {
  assert.equal(DATA_HEAD_SIZE, DATA.fields.data.offset, 'DATA_HEAD_SIZE');
  assert.equal(DATA.size, DATA.fields.data.offset + DATA.fields.data.size, 'data[] ends the struct');
});
