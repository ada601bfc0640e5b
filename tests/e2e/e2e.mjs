// End-to-end test of `slm serve` with the official OpenAI Node client.
// Usage: node e2e.mjs  (env: SLM_BIN, SLM_SHARED). Exits non-zero on the first failure.
import { spawn, execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import OpenAI from 'openai';
import { checker, startServer as startHarnessServer } from './harness.mjs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const bin = process.env.SLM_BIN || 'build/slm';
const shared = process.env.SLM_SHARED || process.env.SLM_SHARED_DEFAULT || '../shared';
const model = `${shared}/models/stories260K.gguf`;
const KEY = 'sk-test-e2e';

function startServer(extra = [], modelFile = model, ctx = 256) {
  return startHarnessServer(bin, ['-m', modelFile, '--port', '0', '--parallel', '4', '--ctx', String(ctx), '-t', '2',
                                  '--api-key', KEY, '--max-body', '65536', ...extra]);
}

function rawRequest(port, method, path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path,
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}`, ...headers } }, (res) => {
      let data = '';
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const { check, results } = checker({ stopAtFirst: true });

const server = await startServer();
const client = new OpenAI({ apiKey: KEY, baseURL: `http://127.0.0.1:${server.port}/v1`, maxRetries: 0, timeout: 60000 });
const messages = [{ role: 'user', content: 'Once upon a time there was a dog.' }];

try {
  await check('health and models', async () => {
    const h = await rawRequest(server.port, 'GET', '/health');
    assert.equal(h.status, 200);
    const models = await client.models.list();
    assert.equal(models.data.length, 1);
    assert.equal(models.data[0].id, 'stories260K');
  });

  let chatText;
  await check('chat completion', async () => {
    const r = await client.chat.completions.create({ model: 'stories260K', messages, max_tokens: 24, temperature: 0 });
    chatText = r.choices[0].message.content;
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.ok(chatText.length > 0, 'non-empty answer');
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
    assert.ok(r.usage.prompt_tokens > 5 && r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 24);
  });

  await check('streamed chat joins to the non-streamed text; next request on the same connection works', async () => {
    const stream = await client.chat.completions.create({ model: 'stories260K', messages, max_tokens: 24, temperature: 0, stream: true });
    let joined = '';
    let finish = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      joined += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(joined, chatText);
    assert.ok(['stop', 'length'].includes(finish));
    // Right after the stream, on the kept-alive connection.
    const r = await client.chat.completions.create({ model: 'stories260K', messages, max_tokens: 8, temperature: 0 });
    assert.ok(r.choices[0].message.content.length > 0);
    const r2 = await client.completions.create({ model: 'stories260K', prompt: 'The cat', max_tokens: 4, temperature: 0 });
    assert.ok(r2.choices[0].text.length > 0);
  });

  await check('greedy completion equals slm run --temp 0', async () => {
    const prompt = 'Once upon a time';
    const r = await client.completions.create({ model: 'stories260K', prompt, max_tokens: 40, temperature: 0 });
    const cli = execFileSync(bin, ['run', '-m', model, '-p', prompt, '-n', '40', '--temp', '0', '--ctx', '256'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    assert.equal(r.choices[0].text + '\n', cli);  // slm run ends its output with a newline
    assert.equal(r.usage.completion_tokens, 40);
    assert.equal(r.choices[0].finish_reason, 'length');
  });

  await check('a prompt that extends an earlier one reuses the slot\'s cache and gives slm run\'s text', async () => {
    const cachedCount = async () => Number((await rawRequest(server.port, 'GET', '/metrics')).body.match(/slm_prompt_tokens_cached_total (\d+)/)[1]);
    const first = 'Once upon a time, there was a little girl';
    const a = await client.completions.create({ model: 'stories260K', prompt: first, max_tokens: 24, temperature: 0 });
    const before = await cachedCount();
    const second = first + a.choices[0].text + ' One day';
    const b = await client.completions.create({ model: 'stories260K', prompt: second, max_tokens: 24, temperature: 0 });
    const after = await cachedCount();
    assert.ok(after - before >= 20, `cached prompt tokens ${before} -> ${after}`);
    const cli = execFileSync(bin, ['run', '-m', model, '-p', second, '-n', '24', '--temp', '0', '--ctx', '256'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    assert.equal(b.choices[0].text + '\n', cli);
  });

  await check('echo, logit_bias, 405 for a wrong method', async () => {
    const prompt = 'Once upon a time';
    const plain = await client.completions.create({ model: 'stories260K', prompt, max_tokens: 8, temperature: 0 });
    const echoed = await client.completions.create({ model: 'stories260K', prompt, max_tokens: 8, temperature: 0, echo: true });
    assert.equal(echoed.choices[0].text, prompt + plain.choices[0].text);
    // Banning the tokens of the greedy answer changes it.
    const tok = JSON.parse(execFileSync(bin, ['tokenize', '-m', model, '--ids', '--no-bos', '-p', plain.choices[0].text]).toString().trim().split('\n')[0].replace(/ /g, ',').replace(/^/, '[').replace(/$/, ']'));
    const bias = Object.fromEntries(tok.map((t) => [t, -100]));  // none of the tokens of the plain answer
    const banned = await client.completions.create({ model: 'stories260K', prompt, max_tokens: 8, temperature: 0, logit_bias: bias });
    assert.notEqual(banned.choices[0].text, plain.choices[0].text);
    const wrong = await rawRequest(server.port, 'GET', '/v1/chat/completions');
    assert.equal(wrong.status, 405);
    assert.equal(JSON.parse(wrong.body).error.message, 'method not allowed');
  });

  await check('logprobs in OpenAI\'s shapes (chat and completions, streamed and not)', async () => {
    const chat = await client.chat.completions.create({ model: 'stories260K', messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 });
    const content = chat.choices[0].logprobs.content;
    assert.equal(content.length, chat.usage.completion_tokens);
    assert.equal(content.map((t) => t.token).join(''), chat.choices[0].message.content);
    for (const t of content) {
      assert.ok(t.logprob <= 0);
      assert.equal(t.top_logprobs.length, 3);
      assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[2].logprob);
      // greedy: the chosen token is the most likely one
      assert.equal(t.top_logprobs[0].token, t.token);
      assert.deepEqual(t.bytes, [...Buffer.from(t.token, 'utf8')]);
    }
    const prompt = 'Once upon a time';
    const comp = await client.completions.create({ model: 'stories260K', prompt, max_tokens: 5, temperature: 0, logprobs: 2 });
    const lp = comp.choices[0].logprobs;
    assert.equal(lp.tokens.join(''), comp.choices[0].text);
    assert.equal(lp.token_logprobs.length, 5);
    assert.equal(Object.keys(lp.top_logprobs[0]).length, 2);
    assert.equal(lp.text_offset[0], 0);
    assert.equal(lp.text_offset[1], lp.tokens[0].length);
    const stream = await client.completions.create({ model: 'stories260K', prompt, max_tokens: 5, temperature: 0, logprobs: 2, stream: true });
    const streamed = [];
    for await (const c of stream) if (c.choices[0]?.logprobs) streamed.push(...c.choices[0].logprobs.tokens);
    assert.deepEqual(streamed, lp.tokens);
  });

  await check('n choices side by side: indices, distinct samples, greedy ones equal, streamed too', async () => {
    const prompt = 'Once upon a time';
    const r = await client.completions.create({ model: 'stories260K', prompt, max_tokens: 12, temperature: 1, seed: 5, n: 3 });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
    assert.ok(new Set(r.choices.map((c) => c.text)).size > 1, 'sampled choices differ');
    assert.equal(r.usage.completion_tokens, 36);
    const g = await client.chat.completions.create({ model: 'stories260K', messages, max_tokens: 8, temperature: 0, n: 2 });
    assert.equal(g.choices.length, 2);
    assert.equal(g.choices[0].message.content, g.choices[1].message.content);
    const s = await client.completions.create({ model: 'stories260K', prompt, max_tokens: 12, temperature: 1, seed: 5, n: 3, stream: true });
    const texts = ['', '', ''];
    for await (const c of s) for (const ch of c.choices) texts[ch.index] += ch.text;
    assert.deepEqual(texts, r.choices.map((c) => c.text));
    await assert.rejects(client.completions.create({ model: 'stories260K', prompt, max_tokens: 2, n: 5 }),
      (e) => e instanceof OpenAI.BadRequestError && /slots/.test(e.message));
  });

  await check('completion with stop strings', async () => {
    const full = (await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 40, temperature: 0 })).choices[0].text;
    const words = full.trim().split(/\s+/);
    const stop = ' ' + words[Math.min(5, words.length - 1)];
    const r = await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 40, temperature: 0, stop: [stop, 'zzzz'] });
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.choices[0].text, full.slice(0, full.indexOf(stop)));
    // streamed, the same
    const s = await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 40, temperature: 0, stop, stream: true });
    let joined = '';
    for await (const c of s) joined += c.choices[0]?.text ?? '';
    assert.equal(joined, r.choices[0].text);
  });

  await check('errors through the client\'s own types', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'stories260K', messages, temperature: 'hot' }),
      (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && /temperature/.test(e.message));
    // Any model name is served (clients ship fixed names); the answer names the served model.
    const other = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 2 });
    assert.equal(other.model, 'stories260K');
    // A schema keyword slm cannot honour is a 400 naming it, never dropped.
    await assert.rejects(client.chat.completions.create({ model: 'stories260K', messages,
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', patternProperties: { a: {} } } } } }),
      (e) => e instanceof OpenAI.BadRequestError && e.message.includes('patternProperties'));
    await assert.rejects(client.chat.completions.create({ model: 'stories260K', messages: [{ role: 'wizard', content: 'hi' }] }),
      (e) => e instanceof OpenAI.BadRequestError && /role/.test(e.message));
    // A tool-call turn's null content renders as empty text.
    const nullTurn = await client.chat.completions.create({ model: 'stories260K', max_tokens: 2,
      messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: null }, { role: 'user', content: 'again' }] });
    assert.equal(nullTurn.choices.length, 1);
    await assert.rejects(client.chat.completions.create({ model: 'stories260K', messages: 'hi' }),
      (e) => e instanceof OpenAI.BadRequestError);
    const long = 'Once upon a time '.repeat(200);
    await assert.rejects(client.completions.create({ model: 'stories260K', prompt: long, max_tokens: 4 }),
      (e) => e instanceof OpenAI.BadRequestError && /\d+ tokens/.test(e.message) && /256/.test(e.message));
    const bad = new OpenAI({ apiKey: 'wrong', baseURL: `http://127.0.0.1:${server.port}/v1`, maxRetries: 0 });
    await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
    await assert.rejects(client.completions.create({ model: 'stories260K', prompt: 'x'.repeat(70000), max_tokens: 1 }),
      (e) => e instanceof OpenAI.APIError && e.status === 413);
  });

  await check('malformed JSON is a 400 in OpenAI\'s shape', async () => {
    for (const body of ['{"model":', '[1,2]', 'null', '{"messages":[{"role":1}]}', '\u0000\u0001']) {
      const r = await rawRequest(server.port, 'POST', '/v1/chat/completions', body);
      assert.equal(r.status, 400, body);
      const j = JSON.parse(r.body);
      assert.equal(typeof j.error.message, 'string');
      assert.equal(j.error.type, 'invalid_request_error');
    }
    const r = await rawRequest(server.port, 'GET', '/v1/nothing');
    assert.equal(r.status, 404);
    assert.ok(JSON.parse(r.body).error);
  });

  await check('load: 32 concurrent streaming clients, some disconnecting', async () => {
    const prompts = ['Once upon a time', 'The little dog', 'Lily wanted', 'One day, a bird'];
    const expected = {};
    for (const p of prompts)
      expected[p] = (await client.completions.create({ model: 'stories260K', prompt: p, max_tokens: 32, temperature: 0 })).choices[0].text;
    const rss = () => Number(fs.readFileSync(`/proc/${server.proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) * 1024;
    const idleRss = rss();
    let completed = 0, aborted = 0;
    async function clientLoop(i) {
      for (let k = 0; k < 3; ++k) {
        const p = prompts[(i + k) % prompts.length];
        const abort = (i + k) % 5 === 0;
        const ctl = new AbortController();
        const s = await client.completions.create({ model: 'stories260K', prompt: p, max_tokens: 32, temperature: 0, stream: true }, { signal: ctl.signal });
        let text = '';
        let n = 0;
        try {
          for await (const c of s) {
            text += c.choices[0]?.text ?? '';
            if (abort && ++n === 3) { ctl.abort(); break; }
          }
        } catch (e) {
          if (!abort) throw e;
        }
        if (abort) { aborted++; continue; }
        assert.equal(text, expected[p], `client ${i} request ${k}`);
        completed++;
      }
    }
    await Promise.all(Array.from({ length: 32 }, (_, i) => clientLoop(i)));
    assert.ok(completed > 60, `completed ${completed}`);
    const h = await rawRequest(server.port, 'GET', '/health');
    assert.equal(h.status, 200);
    const m = (await rawRequest(server.port, 'GET', '/metrics')).body;
    assert.match(m, /slm_requests_total \d+/);
    // every slot freed again (aborted streams are noticed within a step or two)
    let m2 = '';
    for (let tries = 0; tries < 30; ++tries) {
      await new Promise((r) => setTimeout(r, 100));
      m2 = (await rawRequest(server.port, 'GET', '/metrics')).body;
      if (/slm_slots_active 0\b/.test(m2) && /slm_queue_depth 0\b/.test(m2)) break;
    }
    assert.match(m2, /slm_slots_active 0\b/);
    assert.match(m2, /slm_queue_depth 0\b/);
    const afterRss = rss();
    assert.ok(afterRss < idleRss * 1.25 + 16 * 1024 * 1024, `memory back to idle: ${idleRss} -> ${afterRss} bytes`);
    results.push(`     load: ${completed} completed, ${aborted} aborted; RSS idle ${(idleRss / 1048576).toFixed(1)} MiB, after ${(afterRss / 1048576).toFixed(1)} MiB`);
  });

  await check('adapters per request: two requests with different adapters in one batch equal slm run with each', async () => {
    const dir = fs.mkdtempSync('/tmp/slm-e2e-lora-');
    const files = [0, 1].map((k) => {
      const f = `${dir}/a${k}.gguf`;
      execFileSync(bin, ['lora', 'synth', '-m', model, '-o', f, '--rank', '8', '--std', '0.2', '--seed', String(11 + k)], { stdio: 'ignore' });
      return f;
    });
    const srv = await startServer(['--lora-scaled', `${files[0]}:0`, '--lora-scaled', `${files[1]}:0`]);
    try {
      const c = new OpenAI({ apiKey: KEY, baseURL: `http://127.0.0.1:${srv.port}/v1`, maxRetries: 0, timeout: 60000 });
      const list = JSON.parse((await rawRequest(srv.port, 'GET', '/lora-adapters')).body);
      assert.equal(list.length, 2);
      assert.deepEqual(list.map((a) => [a.id, a.scale]), [[0, 0], [1, 0]]);
      const prompt = 'Once upon a time';
      const ask = (lora) => c.completions.create({ model: 'stories260K', prompt, max_tokens: 30, temperature: 0, lora });
      const before = (await rawRequest(srv.port, 'GET', '/metrics')).body.match(/slm_mixed_adapter_steps_total (\d+)/)[1];
      const [r0, r1, rb] = await Promise.all([ask([{ id: 0, scale: 1 }]), ask([{ id: 1, scale: 1 }]), ask(undefined)]);
      const after = (await rawRequest(srv.port, 'GET', '/metrics')).body.match(/slm_mixed_adapter_steps_total (\d+)/)[1];
      assert.ok(Number(after) > Number(before), 'the three requests shared batch steps');
      const runWith = (args) => execFileSync(bin, ['run', '-m', model, '-p', prompt, '-n', '30', '--temp', '0', '--ctx', '256', ...args], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
      assert.equal(r0.choices[0].text + '\n', runWith(['--lora', files[0]]));
      assert.equal(r1.choices[0].text + '\n', runWith(['--lora', files[1]]));
      assert.equal(rb.choices[0].text + '\n', runWith([]));
      assert.notEqual(r0.choices[0].text, rb.choices[0].text, 'adapter 0 changes the text');
      assert.notEqual(r1.choices[0].text, r0.choices[0].text, 'the adapters differ');
      // New default scales apply to requests that name no adapters.
      const set = await rawRequest(srv.port, 'POST', '/lora-adapters', JSON.stringify([{ id: 1, scale: 1 }]));
      assert.equal(set.status, 200);
      assert.equal((await ask(undefined)).choices[0].text, r1.choices[0].text);
      const bad = await rawRequest(srv.port, 'POST', '/v1/completions', JSON.stringify({ prompt, lora: [{ id: 5, scale: 1 }] }));
      assert.equal(bad.status, 400);
      assert.match(JSON.parse(bad.body).error.message, /adapter 5/);
      const metrics = (await rawRequest(srv.port, 'GET', '/metrics')).body;
      assert.match(metrics, /slm_lora_requests_total\{id="0",name="a0"\} 1/);
    } finally {
      srv.proc.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  await check('--queue 0 still serves, --alias names the model, a port in use fails at start, access log', async () => {
    const srv = await startServer(['--queue', '0', '--alias', 'my-model']);
    try {
      const c = new OpenAI({ apiKey: KEY, baseURL: `http://127.0.0.1:${srv.port}/v1`, maxRetries: 0, timeout: 60000 });
      const r = await c.completions.create({ model: 'anything', prompt: 'Once', max_tokens: 3 });
      assert.equal(r.model, 'my-model');
      assert.deepEqual((await c.models.list()).data.map((m) => m.id), ['my-model']);
      const second = spawn(bin, ['serve', '-m', model, '--port', String(srv.port)], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      second.stderr.on('data', (d) => (err += d));
      const code = await new Promise((resolve) => second.on('exit', resolve));
      assert.notEqual(code, 0, 'a second server on the same port must not start');
      assert.match(err, /in use/);
      assert.match(srv.log(), /serve: POST \/v1\/completions 200 tokens \d+\+3 [\d.]+ ms/);
    } finally {
      srv.proc.kill('SIGTERM');
    }
  });

  await check('response_format json_schema through the client validates (ajv, draft 2020-12)', async () => {
    const ajv = new Ajv2020({ strict: false });
    addFormats(ajv);
    for (const name of ['review', 'meeting', 'invoice']) {
      const schema = JSON.parse(fs.readFileSync(`${shared}/schemas/${name}.json`, 'utf8'));
      const validate = ajv.compile(schema);
      for (const seed of [1, 2, 3]) {
        for (const stream of [false, true]) {
          const req = { model: 'stories260K', messages, temperature: 1, seed, max_tokens: 200,
            response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } } };
          let text = '', finish;
          if (stream) {
            for await (const c of await client.chat.completions.create({ ...req, stream: true })) {
              text += c.choices[0]?.delta?.content ?? '';
              finish = c.choices[0]?.finish_reason ?? finish;
            }
          } else {
            const r = await client.chat.completions.create(req);
            text = r.choices[0].message.content;
            finish = r.choices[0].finish_reason;
          }
          assert.equal(finish, 'stop', `${name} seed ${seed}: ${text}`);
          const v = JSON.parse(text);
          assert.ok(validate(v), `${name} seed ${seed}: ${ajv.errorsText(validate.errors)}: ${text}`);
        }
      }
    }
    const obj = await client.chat.completions.create({ model: 'stories260K', messages, temperature: 1, seed: 5, max_tokens: 100,
      response_format: { type: 'json_object' } });
    if (obj.choices[0].finish_reason === 'stop') assert.equal(typeof JSON.parse(obj.choices[0].message.content), 'object');
  });

  await check('tools: required and named tool_choice give schema-valid calls (Hermes-3 template)', async () => {
    const srv = await startServer(['--chat-template', `${shared}/templates/NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja`],
                                  `${shared}/fixtures/llama-f32.gguf`, 2048);
    try {
      const c = new OpenAI({ apiKey: KEY, baseURL: `http://127.0.0.1:${srv.port}/v1`, maxRetries: 0, timeout: 60000 });
      const parameters = { type: 'object', properties: { city: { type: 'string', maxLength: 20 }, days: { type: 'integer', minimum: 1, maximum: 7 } },
                           required: ['city', 'days'], additionalProperties: false };
      const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather forecast', parameters } },
                     { type: 'function', function: { name: 'get_time', description: 'Local time',
                       parameters: { type: 'object', properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } }, required: ['zone'] } } }];
      const ajv = new Ajv2020({ strict: false });
      const byName = Object.fromEntries(tools.map((t) => [t.function.name, ajv.compile(t.function.parameters)]));
      for (const [choice, seed] of [['required', 1], ['required', 2], [{ type: 'function', function: { name: 'get_weather' } }, 3]]) {
        const req = { model: 'm', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools, tool_choice: choice,
                      temperature: 1, seed, max_tokens: 120 };
        const r = await c.chat.completions.create(req);
        const m = r.choices[0].message;
        assert.equal(r.choices[0].finish_reason, 'tool_calls', JSON.stringify(m));
        assert.equal(m.tool_calls.length, 1);
        const call = m.tool_calls[0];
        assert.match(call.id, /^call_/);
        assert.equal(call.type, 'function');
        if (typeof choice === 'object') assert.equal(call.function.name, 'get_weather');
        assert.ok(byName[call.function.name], call.function.name);
        assert.ok(byName[call.function.name](JSON.parse(call.function.arguments)), call.function.arguments);
        // streamed: id, type and name first, then the arguments in fragments
        let id, name, args = '', finish;
        for await (const ch of await c.chat.completions.create({ ...req, stream: true })) {
          const d = ch.choices[0]?.delta;
          for (const tc of d?.tool_calls ?? []) {
            if (tc.id) id = tc.id;
            if (tc.function?.name) name = tc.function.name;
            args += tc.function?.arguments ?? '';
          }
          finish = ch.choices[0]?.finish_reason ?? finish;
        }
        assert.equal(finish, 'tool_calls');
        assert.match(id, /^call_/);
        assert.equal(name, call.function.name);
        assert.equal(args, call.function.arguments);
      }
      // The tool's result goes back through the template.
      const back = await c.chat.completions.create({ model: 'm', tools, max_tokens: 8, messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","days":1}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '{"forecast":"sun"}' }] });
      assert.equal(back.choices.length, 1);
    } finally {
      srv.proc.kill('SIGTERM');
    }
  });

  await check('--context-shift: a slot whose context fills goes on (without it: finish_reason length at the context)', async () => {
    for (const shift of [false, true]) {
      const srv = await startServer(shift ? ['--context-shift', '--keep', '2'] : [], model, 48);
      try {
        const c = new OpenAI({ apiKey: KEY, baseURL: `http://127.0.0.1:${srv.port}/v1`, maxRetries: 0, timeout: 60000 });
        const r = await c.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: 150, temperature: 0 });
        const m = await rawRequest(srv.port, 'GET', '/metrics');
        const shifts = Number((m.body.match(/^slm_context_shifts_total (\d+)/m) || [])[1]);
        if (shift) {
          assert.ok(r.choices[0].finish_reason === 'length' && r.usage.completion_tokens === 150 ||
                    r.choices[0].finish_reason === 'stop', JSON.stringify(r.usage) + r.choices[0].finish_reason);
          assert.ok(shifts > 0, m.body);
        } else {
          assert.equal(r.choices[0].finish_reason, 'length');
          // the context's 48 positions, plus the token sampled from the last one's logits
          assert.ok(r.usage.prompt_tokens + r.usage.completion_tokens <= 49, JSON.stringify(r.usage));
          assert.equal(shifts, 0);
        }
      } finally {
        srv.proc.kill('SIGTERM');
      }
    }
  });

  await check('graceful shutdown on SIGTERM exits 0', async () => {
    const code = await new Promise((resolve) => {
      server.proc.removeAllListeners('exit');
      server.proc.on('exit', (c) => resolve(c));
      server.proc.kill('SIGTERM');
    });
    assert.equal(code, 0);
  });
} finally {
  server.proc.kill('SIGKILL');
}
console.log(results.join('\n'));
