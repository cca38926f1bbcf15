/**
 * Rewrites the README's variable and metric tables from the lists the code reads
 * (src/reference.ts): `npm run docs`. test/unit/readme-reference.test.ts fails when they differ.
 */
import fs from 'node:fs';
import path from 'node:path';
import { withReference } from '../src/reference';

const README = path.join(__dirname, '..', 'README.md');
const before = fs.readFileSync(README, 'utf8');
const after = withReference(before);
if (after === before) {
  process.stdout.write('README.md: the reference tables are up to date\n');
} else {
  fs.writeFileSync(README, after);
  process.stdout.write('README.md: reference tables rewritten\n');
}
