/**
 * The headers are the contracts between the kernel side, the native assembler and TypeScript:
 * compile each with gcc and check every size, offset and constant its TypeScript mirror uses.
 * Fails (never skips) when gcc is missing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EXCHANGE_CONSTANTS, EXCHANGE_STRUCTS } from '../../src/capture/exchange-layout';
import { ALL_STRUCTS, C_CONSTANTS, DATA, DATA_HEAD_SIZE, type StructLayout } from '../../src/capture/records';

const ROOT = resolve(__dirname, '../..');

interface Contract {
  header: string;
  /** the mirror, for messages */
  mirror: string;
  structs: readonly StructLayout[];
  constants: Readonly<Record<string, number>>;
}

const CONTRACTS: Contract[] = [
  {
    header: join(ROOT, 'bpf/kong_watcher_events.h'),
    mirror: 'src/capture/records.ts',
    structs: ALL_STRUCTS,
    constants: C_CONSTANTS,
  },
  {
    header: join(ROOT, 'native/kw_exchange.h'),
    mirror: 'src/capture/exchange-layout.ts',
    structs: EXCHANGE_STRUCTS,
    constants: EXCHANGE_CONSTANTS,
  },
];

/** Compiles a program that prints every size, offset and constant the mirror names. */
function measure(contract: Contract, dir: string): Map<string, number> {
  const lines: string[] = [];
  for (const s of contract.structs) {
    lines.push(`printf("S %s %zu\\n", "${s.struct}", sizeof(struct ${s.struct}));`);
    for (const name of Object.keys(s.fields)) {
      lines.push(
        `printf("F %s.%s %zu %zu\\n", "${s.struct}", "${name}", offsetof(struct ${s.struct}, ${name}), ` +
          `sizeof(((struct ${s.struct} *)0)->${name}));`,
      );
    }
  }
  for (const name of Object.keys(contract.constants)) {
    lines.push(`printf("C %s %lld\\n", "${name}", (long long)(${name}));`);
  }
  const src = `#include <stdio.h>\n#include <stddef.h>\n#include "${contract.header}"\nint main(void) {\n${lines.join('\n')}\nreturn 0;\n}\n`;
  const base = join(dir, contract.mirror.replace(/\W/g, '_'));
  writeFileSync(`${base}.c`, src);
  execFileSync('gcc', ['-std=c11', '-Wall', '-Werror', '-Wpadded', '-I', join(ROOT, 'bpf'), '-o', base, `${base}.c`]);
  const actual = new Map<string, number>();
  for (const line of execFileSync(base, { encoding: 'utf8' }).trim().split('\n')) {
    const [kind, name, a, b] = line.split(' ');
    if (kind === 'S') actual.set(`sizeof ${name}`, Number(a));
    if (kind === 'F') {
      actual.set(`offsetof ${name}`, Number(a));
      actual.set(`sizeof ${name}`, Number(b));
    }
    if (kind === 'C') actual.set(name, Number(a));
  }
  return actual;
}

/** Struct names and their field names as the header declares them (comments stripped). */
function declaredStructs(header: string): Map<string, string[]> {
  const text = readFileSync(header, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
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
  return declared;
}

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kw-layout-'));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

for (const contract of CONTRACTS) {
  describe(`${contract.header.slice(ROOT.length + 1)} vs ${contract.mirror}`, () => {
    let actual = new Map<string, number>();
    before(() => {
      actual = measure(contract, dir);
    });

    test('every struct size matches, 8-byte aligned', () => {
      for (const s of contract.structs) {
        assert.equal(s.size, actual.get(`sizeof ${s.struct}`), `sizeof(struct ${s.struct})`);
        assert.equal(s.size % 8, 0, `struct ${s.struct} size is 8-byte aligned`);
      }
    });

    test('every field offset and size matches', () => {
      for (const s of contract.structs) {
        for (const [name, field] of Object.entries(s.fields)) {
          assert.equal(field.offset, actual.get(`offsetof ${s.struct}.${name}`), `offsetof(${s.struct}, ${name})`);
          assert.equal(field.size, actual.get(`sizeof ${s.struct}.${name}`), `sizeof(${s.struct}.${name})`);
        }
      }
    });

    test('fields tile each struct with no hidden padding', () => {
      for (const s of contract.structs) {
        const fields = Object.values(s.fields).sort((x, y) => x.offset - y.offset);
        let at = 0;
        for (const fl of fields) {
          assert.equal(fl.offset, at, `${s.struct}: a field starts at ${at}`);
          at += fl.size;
        }
        assert.equal(at, s.size, `${s.struct}: fields end at sizeof`);
      }
    });

    test('the mirror lists every struct and field the header declares', () => {
      const declared = declaredStructs(contract.header);
      const mirrored = new Map(contract.structs.map((s) => [s.struct, Object.keys(s.fields)]));
      assert.deepEqual([...declared.keys()].sort(), [...mirrored.keys()].sort(), 'the same structs on both sides');
      for (const [name, fields] of declared) assert.deepEqual(mirrored.get(name), fields, `fields of struct ${name}`);
    });

    test('every constant matches, and the header has no unmirrored KW_ constants', () => {
      for (const [name, value] of Object.entries(contract.constants)) assert.equal(value, actual.get(name), name);
      const text = readFileSync(contract.header, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
      const names = new Set([...text.matchAll(/\b(KW_[A-Z0-9_]+)\s*(=|\d|0x)/g)].map((m) => m[1]));
      for (const name of names) assert.ok(name in contract.constants, `${name} is mirrored in ${contract.mirror}`);
    });
  });
}

test('a DATA record sends its fixed part, then the payload that ends the struct', () => {
  const fixed = Object.values(DATA.fields).filter((fl) => fl !== DATA.fields.data);
  const fixedEnd = Math.max(...fixed.map((fl) => fl.offset + fl.size));
  assert.equal(DATA_HEAD_SIZE, fixedEnd, 'DATA_HEAD_SIZE is where the fixed fields end');
  assert.equal(DATA.size, DATA_HEAD_SIZE + DATA.fields.data.size, 'data[] is the last field');
});
