// Parses an AsyncAPI document with the official parser; prints its diagnostics and a
// summary line, exits 1 on any error. Run with the parser installed in the cwd.
import { Parser } from '@asyncapi/parser';
import { readFileSync } from 'node:fs';
const parser = new Parser();
const text = readFileSync(process.argv[process.argv.length - 1], 'utf8');
const { document, diagnostics } = await parser.parse(text);
const errors = diagnostics.filter(d => d.severity === 0);
for (const d of diagnostics) console.log(JSON.stringify({severity: d.severity, code: d.code, message: d.message, path: d.path}));
console.log(JSON.stringify({parsed: !!document, errors: errors.length, channels: document ? document.channels().length : 0, messages: document ? document.allMessages().length : 0}));
process.exit(errors.length || !document ? 1 : 0);
