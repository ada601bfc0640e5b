// Aggregate generation throughput of `slm serve` for several slot counts.
// Usage: node throughput.mjs MODEL.gguf [clients=8] [tokens=64] [slots=1,4,8]
// Each run starts a server with --parallel N and has `clients` concurrent streaming clients
// ask for `tokens` tokens each (temperature 0); prints tokens/s over the whole run.
import { spawn } from 'node:child_process';
import OpenAI from 'openai';

const bin = process.env.SLM_BIN || 'build/slm';
const [model, clientsArg = '8', tokensArg = '64', slotsArg = '1,4,8'] = process.argv.slice(2);
if (!model) { console.error('usage: node throughput.mjs MODEL.gguf [clients] [tokens] [slots]'); process.exit(2); }
const clients = Number(clientsArg), tokens = Number(tokensArg);

function start(parallel) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, ['serve', '-m', model, '--port', '0', '--parallel', String(parallel), '--ctx', '512'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; const m = err.match(/ready on http:\/\/[^:]+:(\d+)/); if (m) resolve({ p, port: Number(m[1]) }); });
    p.on('exit', (c) => reject(new Error(`server exited ${c}: ${err}`)));
  });
}

for (const slots of slotsArg.split(',').map(Number)) {
  const { p, port } = await start(slots);
  const client = new OpenAI({ apiKey: 'x', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0, timeout: 600000 });
  await client.completions.create({ prompt: 'Warm up', max_tokens: 4, temperature: 0 });
  const t0 = performance.now();
  const counts = await Promise.all(Array.from({ length: clients }, async (_, i) => {
    const r = await client.completions.create({ prompt: `Story number ${i}: once upon a time`, max_tokens: tokens, temperature: 0 });
    return r.usage.completion_tokens;
  }));
  const secs = (performance.now() - t0) / 1000;
  const total = counts.reduce((a, b) => a + b, 0);
  console.log(`slots ${slots}: ${total} tokens from ${clients} clients in ${secs.toFixed(2)} s = ${(total / secs).toFixed(1)} tokens/s`);
  p.kill('SIGTERM');
  await new Promise((r) => p.on('exit', r));
}
