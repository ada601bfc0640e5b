// Constrained output checked by an independent validator: every schema in
// $SLM_SHARED/schemas, sampled at temperature 1 with many seeds through `slm run
// --json-schema`, must give JSON that ajv (draft 2020-12, formats checked) accepts, and the
// generation must end by itself (end of generation, not the token limit). Random-weight
// fixtures are good fuzzers of the grammar: they go wherever it lets them.
// Usage: node structured.mjs [seeds=20]  (env: SLM_BIN, SLM_SHARED)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const bin = process.env.SLM_BIN || 'build/slm';
const shared = process.env.SLM_SHARED || process.env.SLM_SHARED_DEFAULT || '../shared';
const seeds = Number(process.argv[2] || 20);
const models = [
  `${shared}/models/stories260K.gguf`,         // SentencePiece with byte fallback
  `${shared}/fixtures/llama-q4_k_m.gguf`,      // byte-level BPE
  `${shared}/fixtures/gemma2-q8_0.gguf`,       // Gemma's 256k-entry SentencePiece
].filter((m) => fs.existsSync(m));

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);

let failures = 0, runs = 0;
function run(model, args, n = 600) {
  const r = spawnSync(bin, ['run', '-m', model, '-p', 'Once upon a time', '--temp', '1', '-n', String(n), '-t', '2', ...args],
                      { encoding: 'utf8', timeout: 120000 });
  return r;
}

const dir = `${shared}/schemas`;
const schemas = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
for (const file of schemas) {
  const schema = JSON.parse(fs.readFileSync(`${dir}/${file}`, 'utf8'));
  const validate = ajv.compile(schema);
  for (const model of models)
    for (let seed = 1; seed <= seeds; ++seed) {
      ++runs;
      const r = run(model, ['--json-schema', `${dir}/${file}`, '--seed', String(seed)]);
      const where = `${file} on ${model.split('/').pop()} seed ${seed}`;
      if (r.status !== 0) { ++failures; console.error(`FAIL ${where}: exit ${r.status}: ${r.stderr.trim().split('\n').pop()}`); continue; }
      if (!/stop: eog/.test(r.stderr)) { ++failures; console.error(`FAIL ${where}: did not end by itself: ${r.stdout}`); continue; }
      let value;
      try { value = JSON.parse(r.stdout); } catch (e) { ++failures; console.error(`FAIL ${where}: not JSON: ${r.stdout}`); continue; }
      if (!validate(value)) { ++failures; console.error(`FAIL ${where}: ${ajv.errorsText(validate.errors)}: ${r.stdout}`); }
    }
}

// --json: any JSON object.
for (const model of models.slice(0, 2))
  for (let seed = 1; seed <= seeds; ++seed) {
    ++runs;
    const r = run(model, ['--json', '--seed', String(seed)], 200);
    let ok = r.status === 0;
    if (ok && /stop: eog/.test(r.stderr)) {
      try { const v = JSON.parse(r.stdout); ok = v !== null && typeof v === 'object' && !Array.isArray(v); } catch { ok = false; }
    } else if (ok) {
      // an object may legitimately be cut by -n; it must still be a prefix that began with '{'
      ok = r.stdout.startsWith('{');
    }
    if (!ok) { ++failures; console.error(`FAIL --json on ${model} seed ${seed}: ${r.stdout} ${r.stderr.trim().split('\n').pop()}`); }
  }

// A schema keyword slm does not support is an error naming it, not a silent drop.
{
  const tmp = `${fs.mkdtempSync('/tmp/slm-structured-')}/bad.json`;
  fs.writeFileSync(tmp, JSON.stringify({ type: 'object', patternProperties: { '^x': { type: 'string' } } }));
  const r = run(models[0], ['--json-schema', tmp]);
  ++runs;
  if (r.status === 0 || !/patternProperties/.test(r.stderr)) { ++failures; console.error(`FAIL unsupported keyword: exit ${r.status}: ${r.stderr}`); }
}

console.log(`structured output: ${runs - failures}/${runs} runs valid (${schemas.length} schemas × ${models.length} models × ${seeds} seeds)`);
process.exit(failures ? 1 : 0);
