// End-to-end test of `slm serve` with real client libraries: the official OpenAI client's
// Responses API (client.responses.create, plain, streamed, json_schema, function tools), the
// Vercel AI SDK (generateObject over chat and responses, generateText with a tool) and
// LangChain (ChatOpenAI.withStructuredOutput). Every output that must follow a schema is
// checked by ajv, independently of the server's grammar.
// Usage: node clients.mjs  (env: SLM_BIN, SLM_SHARED). Exits non-zero when a check fails.
import { checker, startServer as startHarnessServer } from './harness.mjs';
import assert from 'node:assert/strict';

const bin = process.env.SLM_BIN || 'build/slm';
const shared = process.env.SLM_SHARED || process.env.SLM_SHARED_DEFAULT || '../shared';
const KEY = 'sk-test-clients';

// The client packages: a missing one is a failure that says what to install, never a skip.
async function need(name) {
  try {
    return await import(name);
  } catch (e) {
    console.error(`FAIL clients: the npm package '${name}' is missing (${e.message.split('\n')[0]}): ` +
                  'run `npm install` in tests/e2e (scripts/setup.sh does)');
    process.exit(1);
  }
}
const { default: OpenAI } = await need('openai');
const { default: Ajv2020 } = await need('ajv/dist/2020.js');
const { z } = await need('zod');
const { zodTextFormat } = await need('openai/helpers/zod');
const { generateObject, generateText, tool } = await need('ai');
const { createOpenAI } = await need('@ai-sdk/openai');
const { ChatOpenAI } = await need('@langchain/openai');

function startServer(modelFile, extra = [], ctx = 512) {
  return startHarnessServer(bin, ['-m', modelFile, '--port', '0', '--parallel', '2', '--ctx', String(ctx), '-t', '2',
                                  '--api-key', KEY, ...extra]);
}

const checks = checker();
const { check, results } = checks;

const ajv = new Ajv2020({ strict: false, allErrors: true });
function assertValid(schema, value, what) {
  const validate = ajv.compile(schema);
  assert.ok(validate(value), `${what}: ${ajv.errorsText(validate.errors)}: ${JSON.stringify(value)}`);
}

// Collects a Responses stream: the events in order, text deltas joined, arguments per item.
async function collect(stream) {
  const events = [];
  let text = '';
  const args = {};
  for await (const ev of stream) {
    events.push(ev);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.function_call_arguments.delta') args[ev.item_id] = (args[ev.item_id] ?? '') + ev.delta;
  }
  events.forEach((ev, i) => assert.equal(ev.sequence_number, i, `sequence_number of event ${i} (${ev.type})`));
  assert.equal(events[0].type, 'response.created');
  assert.equal(events[1].type, 'response.in_progress');
  const last = events.at(-1);
  assert.ok(['response.completed', 'response.incomplete'].includes(last.type), last.type);
  return { events, text, args, final: last.response };
}

const person = { type: 'object', additionalProperties: false, required: ['name', 'age'],
                 properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer', minimum: 0, maximum: 99 } } };
const Person = z.object({ name: z.string().max(12), age: z.number().int().min(0).max(99) });

const text = await startServer(`${shared}/models/stories260K.gguf`);
const tools = await startServer(`${shared}/fixtures/llama-f32.gguf`,
  ['--chat-template', `${shared}/templates/NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja`], 2048);
try {
  const client = new OpenAI({ apiKey: KEY, baseURL: text.url, maxRetries: 0, timeout: 60000 });
  const toolClient = new OpenAI({ apiKey: KEY, baseURL: tools.url, maxRetries: 0, timeout: 120000 });

  // ---- the official client: client.responses.create --------------------------------------
  let plain;
  await check('openai responses.create: plain text', async () => {
    plain = await client.responses.create({ model: 'm', input: 'Once upon a time', max_output_tokens: 24, temperature: 0 });
    assert.equal(plain.object, 'response');
    assert.match(plain.id, /^resp_/);
    assert.ok(['completed', 'incomplete'].includes(plain.status), plain.status);
    if (plain.status === 'incomplete') assert.deepEqual(plain.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(plain.output.length, 1);
    const msg = plain.output[0];
    assert.equal(msg.type, 'message');
    assert.match(msg.id, /^msg_/);
    assert.equal(msg.role, 'assistant');
    assert.equal(msg.content[0].type, 'output_text');
    assert.deepEqual(msg.content[0].annotations, []);
    assert.ok(plain.output_text.length > 0, 'output_text is empty');
    assert.equal(plain.output_text, msg.content[0].text);
    assert.ok(plain.usage.input_tokens > 0 && plain.usage.output_tokens > 0);
    assert.equal(plain.usage.total_tokens, plain.usage.input_tokens + plain.usage.output_tokens);
    assert.equal(plain.max_output_tokens, 24);
    assert.equal(plain.temperature, 0);
  });

  await check('openai responses.create: streamed text joined equals non-streamed (temperature 0)', async () => {
    const s = await collect(await client.responses.create({ model: 'm', input: 'Once upon a time', max_output_tokens: 24,
                                                            temperature: 0, stream: true }));
    assert.equal(s.text, plain.output_text);
    assert.equal(s.final.output[0].content[0].text, plain.output_text);
    assert.equal(s.final.status, plain.status);
    const types = s.events.map((e) => e.type);
    for (const t of ['response.output_item.added', 'response.content_part.added', 'response.output_text.delta',
                     'response.output_text.done', 'response.content_part.done', 'response.output_item.done'])
      assert.ok(types.includes(t), `no ${t} event in ${types.join(', ')}`);
    const done = s.events.find((e) => e.type === 'response.output_text.done');
    assert.equal(done.text, plain.output_text);
    const delta = s.events.find((e) => e.type === 'response.output_text.delta');
    assert.equal(delta.output_index, 0);
    assert.equal(delta.content_index, 0);
    assert.equal(delta.item_id, s.final.output[0].id);
  });

  await check('openai responses.create: instructions and input items (input_text parts)', async () => {
    const r = await client.responses.create({ model: 'm', instructions: 'Tell a story.', max_output_tokens: 8, store: false,
      metadata: { run: 'e2e' }, input: [{ role: 'user', content: [{ type: 'input_text', text: 'Once upon a time' }] }] });
    assert.equal(r.instructions, 'Tell a story.');
    assert.deepEqual(r.metadata, { run: 'e2e' });
    assert.equal(typeof r.output_text, 'string');
  });

  await check('openai responses.create: text.format json_schema gives ajv-valid JSON', async () => {
    for (let i = 0; i < 3; ++i) {
      const r = await client.responses.create({ model: 'm', input: 'Describe a person.', temperature: 1, max_output_tokens: 200,
        text: { format: { type: 'json_schema', name: 'person', strict: true, schema: person } } });
      assert.equal(r.status, 'completed', r.output_text);
      assert.equal(r.text.format.type, 'json_schema');
      assertValid(person, JSON.parse(r.output_text), 'json_schema output');
    }
    const s = await collect(await client.responses.create({ model: 'm', input: 'Describe a person.', max_output_tokens: 200,
      stream: true, text: { format: { type: 'json_schema', name: 'person', strict: true, schema: person } } }));
    assertValid(person, JSON.parse(s.text), 'streamed json_schema output');
  });

  await check('openai responses.stream() helper: events accumulate into finalResponse()', async () => {
    const stream = client.responses.stream({ model: 'm', input: 'Once upon a time', max_output_tokens: 24, temperature: 0 });
    let deltas = '';
    stream.on('response.output_text.delta', (e) => (deltas += e.delta));
    const final = await stream.finalResponse();
    assert.equal(deltas, plain.output_text);
    // (this SDK's stream helper sets no output_text on a plain final response: read the item)
    assert.equal(final.output[0].content[0].text, plain.output_text);
  });

  await check('openai responses.parse with zodTextFormat gives a schema-valid output_parsed', async () => {
    const r = await client.responses.parse({ model: 'm', input: 'Describe a person.', max_output_tokens: 200,
                                             text: { format: zodTextFormat(Person, 'person') } });
    assert.equal(r.status, 'completed', r.output_text);
    assertValid(person, r.output_parsed, 'output_parsed');
  });

  await check('openai responses.create: refused fields are 400s', async () => {
    for (const extra of [{ previous_response_id: 'resp_123' }, { no_such_field: 1 },
                         { tools: [{ type: 'web_search_preview' }] }]) {
      await assert.rejects(client.responses.create({ model: 'm', input: 'x', ...extra }),
                           (e) => e.status === 400 && /not supported|unknown field/.test(e.message), JSON.stringify(extra));
    }
  });

  const params = { type: 'object', properties: { city: { type: 'string', maxLength: 20 }, days: { type: 'integer', minimum: 1, maximum: 7 } },
                   required: ['city', 'days'], additionalProperties: false };
  const weather = [{ type: 'function', name: 'get_weather', description: 'Weather forecast', parameters: params, strict: true },
                   { type: 'function', name: 'get_time', description: 'Local time', strict: false,
                     parameters: { type: 'object', properties: { zone: { type: 'string', enum: ['UTC', 'CET'] } }, required: ['zone'] } }];
  for (const choice of ['required', { type: 'function', name: 'get_weather' }]) {
    await check(`openai responses.create: function tool, tool_choice ${JSON.stringify(choice)}, plain and streamed`, async () => {
      const req = { model: 'm', input: 'Weather in Paris?', tools: weather, tool_choice: choice, temperature: 0, max_output_tokens: 120 };
      const r = await toolClient.responses.create(req);
      assert.equal(r.status, 'completed');
      const calls = r.output.filter((o) => o.type === 'function_call');
      assert.equal(calls.length, 1, JSON.stringify(r.output));
      const call = calls[0];
      assert.match(call.id, /^fc_/);
      assert.match(call.call_id, /^call_/);
      assert.equal(call.status, 'completed');
      if (typeof choice === 'object') assert.equal(call.name, 'get_weather');
      const tool = weather.find((t) => t.name === call.name);
      assert.ok(tool, call.name);
      assertValid(tool.parameters, JSON.parse(call.arguments), 'function_call arguments');
      assert.deepEqual(r.tools.map((t) => t.name), ['get_weather', 'get_time']);

      const s = await collect(await toolClient.responses.create({ ...req, stream: true }));
      const added = s.events.find((e) => e.type === 'response.output_item.added' && e.item.type === 'function_call');
      assert.ok(added, 'no output_item.added for the function_call');
      assert.equal(added.item.name, call.name);
      const done = s.events.find((e) => e.type === 'response.function_call_arguments.done');
      assert.ok(done, 'no function_call_arguments.done');
      assert.equal(s.args[added.item.id], call.arguments);
      assert.equal(done.arguments, call.arguments);
      const final = s.final.output.find((o) => o.type === 'function_call');
      assert.equal(final.arguments, call.arguments);
      assert.equal(final.name, call.name);
    });
  }

  await check('openai responses.create: function_call and function_call_output items go back through the template', async () => {
    const r = await toolClient.responses.create({ model: 'm', tools: weather, max_output_tokens: 8, input: [
      { role: 'user', content: 'Weather in Paris?' },
      { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris","days":1}' },
      { type: 'function_call_output', call_id: 'call_1', output: '{"forecast":"sun"}' }] });
    assert.equal(r.object, 'response');
  });

  // ---- the Vercel AI SDK ----------------------------------------------------------------
  const sdk = createOpenAI({ baseURL: text.url, apiKey: KEY });
  await check('ai-sdk generateObject over chat completions (structuredOutputs) gives a schema-valid object', async () => {
    const { object } = await generateObject({ model: sdk.chat('m', { structuredOutputs: true }), schema: Person,
                                              prompt: 'Describe a person.', maxTokens: 200, maxRetries: 0 });
    assertValid(person, object, 'generateObject (chat)');
  });
  await check('ai-sdk generateObject over the Responses API gives a schema-valid object', async () => {
    const { object } = await generateObject({ model: sdk.responses('m'), schema: Person, prompt: 'Describe a person.',
                                              maxTokens: 200, maxRetries: 0 });
    assertValid(person, object, 'generateObject (responses)');
  });
  const sdkTools = createOpenAI({ baseURL: tools.url, apiKey: KEY });
  for (const [kind, model] of [['chat', sdkTools.chat('m')], ['responses', sdkTools.responses('m')]]) {
    await check(`ai-sdk generateText with a tool (toolChoice required, ${kind}) gives valid arguments`, async () => {
      const r = await generateText({ model, prompt: 'Weather in Paris?', toolChoice: 'required', maxTokens: 120, maxRetries: 0,
        tools: { get_weather: tool({ description: 'Weather forecast',
                                     parameters: z.object({ city: z.string().max(20), days: z.number().int().min(1).max(7) }) }) } });
      assert.equal(r.toolCalls.length, 1, JSON.stringify(r.response?.body ?? r.text));
      assert.equal(r.toolCalls[0].toolName, 'get_weather');
      assertValid(params, r.toolCalls[0].args, 'generateText tool args');
    });
  }

  // ---- LangChain ------------------------------------------------------------------------
  // Its default method is jsonSchema (response_format json_schema); functionCalling forces a
  // tool call, so it runs against the tool-calling template (the Hermes-3 tool_use template
  // iterates `tools` and cannot format a conversation without them, and reads each tool's
  // description: the zod schema carries one).
  await check('langchain ChatOpenAI.withStructuredOutput(zod) (default method: jsonSchema) gives a schema-valid object', async () => {
    const llm = new ChatOpenAI({ configuration: { baseURL: text.url }, apiKey: KEY, model: 'm', maxTokens: 200, maxRetries: 0 });
    for (const method of [undefined, 'jsonSchema']) {
      const out = await llm.withStructuredOutput(Person, { method, name: 'person' }).invoke('Describe a person.');
      assertValid(person, out, `withStructuredOutput (${method ?? 'default'})`);
    }
  });
  await check('langchain ChatOpenAI.withStructuredOutput(zod, functionCalling) gives a schema-valid object', async () => {
    const llm = new ChatOpenAI({ configuration: { baseURL: tools.url }, apiKey: KEY, model: 'm', maxTokens: 200, maxRetries: 0,
                                 temperature: 0 });
    const out = await llm.withStructuredOutput(Person.describe('A person'), { method: 'functionCalling', name: 'person' }).invoke('Describe a person.');
    assertValid(person, out, 'withStructuredOutput (functionCalling)');
  });
  await check('langchain ChatOpenAI (useResponsesApi) withStructuredOutput(zod) gives a schema-valid object', async () => {
    const llm = new ChatOpenAI({ configuration: { baseURL: text.url }, apiKey: KEY, model: 'm', maxTokens: 200, maxRetries: 0,
                                 useResponsesApi: true });
    const out = await llm.withStructuredOutput(Person, { method: 'jsonSchema', name: 'person' }).invoke('Describe a person.');
    assertValid(person, out, 'withStructuredOutput (responses)');
  });
} finally {
  text.proc.kill('SIGKILL');
  tools.proc.kill('SIGKILL');
}
console.log(results.join('\n'));
console.log(`clients: ${results.length - checks.failures}/${results.length} checks passed`);
process.exit(checks.failures ? 1 : 0);
