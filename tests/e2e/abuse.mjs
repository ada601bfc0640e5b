// Abuse of `slm serve` on loopback, the way an exposed server is attacked, each part bounded
// in time: a deeply nested body, a header flood, malformed framing, pipelining, 300 slowloris
// connections (while /health must answer within a second), and a storm of streaming clients
// that disconnect. The server must stay up, answer each with its status line, and its memory
// must come back near idle. Usage: node abuse.mjs (env: SLM_BIN, SLM_SHARED).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { checker, startServer } from './harness.mjs';

const bin = process.env.SLM_BIN || 'build/slm';
const shared = process.env.SLM_SHARED || process.env.SLM_SHARED_DEFAULT || '../shared';
const model = `${shared}/models/stories260K.gguf`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --timeout 3: a request must arrive whole within 3 s of its first byte.
const server = await startServer(bin, ['-m', model, '--port', '0', '--parallel', '2', '--ctx', '256', '-t', '2',
                                       '--max-body', '65536', '--timeout', '3', '--quiet']);
const port = server.port;
const rss = () => Number(fs.readFileSync(`/proc/${server.proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) * 1024;
const MiB = (b) => (b / 1048576).toFixed(1);

// One HTTP request through node's client on its own connection: { status, body, ms }.
function request(method, path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false,
                               headers: { 'Content-Type': 'application/json', ...headers } }, (res) => {
      let data = '';
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode, body: data, ms: Date.now() - t0 }));
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// Raw bytes on a fresh connection; resolves to what came back by the time the server closed
// (or `timeout` ms passed), and how long that took.
function raw(bytes, timeout = 3000) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect(port, '127.0.0.1');
    let reply = '';
    const done = () => { clearTimeout(timer); s.destroy(); resolve({ reply, ms: Date.now() - t0 }); };
    const timer = setTimeout(done, timeout);
    s.on('data', (d) => (reply += d.toString('latin1')));
    s.on('end', done);
    s.on('error', done);
    s.write(bytes);
  });
}

const { check, results } = checker();
const completion = JSON.stringify({ prompt: 'Once upon a time', max_tokens: 8, temperature: 0 });
let idle = 0;

try {
  await check('warm-up: a completion, then the idle memory', async () => {
    const r = await request('POST', '/v1/completions', completion);
    assert.equal(r.status, 200, r.body);
    await sleep(200);
    idle = rss();
  });

  await check('a body nested 14,000 levels deep is a 400, and the server lives', async () => {
    const deep = '['.repeat(14000) + ']'.repeat(14000);
    const body = `{"messages":[{"role":"user","content":"hi","extra":${deep}}],"max_tokens":4}`;
    const r = await request('POST', '/v1/chat/completions', body);
    assert.equal(r.status, 400, r.body);
    assert.match(JSON.parse(r.body).error.message, /nested/);
    assert.equal((await request('GET', '/health')).status, 200);
  });

  await check('header flood: 431 before the flood is read, memory bounded', async () => {
    const before = rss();
    const got = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      let reply = '', sent = 0, stop = false;
      const line = `X-Flood: ${'f'.repeat(8000)}\r\n`;
      const finish = () => { stop = true; s.destroy(); resolve({ reply, sent }); };
      s.on('data', (d) => { reply += d.toString('latin1'); if (reply.includes('\r\n\r\n')) finish(); });
      s.on('error', finish);
      s.on('close', finish);
      s.write('GET /health HTTP/1.1\r\nHost: x\r\n');
      const pump = () => {  // up to 40,000 headers of 8 KB, as fast as the socket takes them
        while (!stop && sent < 40000) {
          ++sent;
          if (!s.write(line)) { s.once('drain', pump); return; }
        }
      };
      pump();
      setTimeout(finish, 5000);
    });
    assert.match(got.reply, /^HTTP\/1\.1 431 /, got.reply.slice(0, 200));
    const after = rss();
    assert.ok(after < before + 16 * 1048576, `RSS ${MiB(before)} -> ${MiB(after)} MiB after ${got.sent} headers sent`);
    results.push(`     header flood: 431 after the client had written ${got.sent} headers; RSS ${MiB(before)} -> ${MiB(after)} MiB`);
  });

  await check('malformed framing: each a 4xx/5xx with a status line, never a silent close', async () => {
    const cases = [
      ['POST /v1/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n', 400],
      ['POST /v1/completions HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', 400],
      ['POST /v1/completions HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
      ['POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nnothex\r\n', 400],
      ['POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n', 400],
      ['POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n', 501],
      ['GET /health HTTP/1.1\r\nX: 1\r\n continued\r\n\r\n', 400],
      ['GET /health HTTP/7.0\r\n\r\n', 505],
      [`GET /${'u'.repeat(9000)} HTTP/1.1\r\n\r\n`, 414],
      ['POST /v1/completions HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n', 413],
      ['POST /v1/completions HTTP/1.1\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 16\r\n\r\n{"prompt":1e999}', 400],
    ];
    for (const [bytes, status] of cases) {
      const { reply } = await raw(bytes);
      assert.match(reply, new RegExp(`^HTTP/1\\.1 ${status} `), `${JSON.stringify(bytes.slice(0, 80))} → ${reply.slice(0, 80)}`);
    }
    assert.equal((await request('GET', '/health')).status, 200);
  });

  await check('pipelined requests are answered in order', async () => {
    const body = completion;
    const { reply } = await raw('GET /health HTTP/1.1\r\nHost: x\r\n\r\n' +
                                `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
                                'GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 10000);
    const statuses = [...reply.matchAll(/HTTP\/1\.1 (\d+) /g)].map((m) => m[1]);
    assert.deepEqual(statuses, ['200', '200', '200'], reply.slice(0, 300));
    const health = reply.indexOf('"status":"ok"'), text = reply.indexOf('"text_completion"'), list = reply.indexOf('"object":"list"');
    assert.ok(health >= 0 && text > health && list > text, 'in the order sent');
  });

  await check('slowloris: 300 trickling connections; /health answers within a second; each gets 408 by its deadline', async () => {
    const sockets = [];
    const got408 = [];
    for (let i = 0; i < 300; ++i) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.on('data', (d) => { if (d.toString('latin1').startsWith('HTTP/1.1 408 ')) got408.push(Date.now()); });
      s.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\n');
      sockets.push(s);
    }
    const t0 = Date.now();
    const trickle = setInterval(() => { for (const s of sockets) if (!s.destroyed) s.write('X'); }, 500);
    const probes = [];
    for (let k = 0; k < 5; ++k) {
      await sleep(400);
      probes.push(await request('GET', '/health'));
    }
    const during = await request('POST', '/v1/completions', completion);
    for (let k = 0; k < 30 && got408.length < 300; ++k) await sleep(200);
    clearInterval(trickle);
    for (const s of sockets) s.destroy();
    for (const p of probes) {
      assert.equal(p.status, 200);
      assert.ok(p.ms < 1000, `/health took ${p.ms} ms during the slowloris`);
    }
    assert.equal(during.status, 200, during.body);
    assert.equal(got408.length, 300, `${got408.length} of 300 trickling connections got their 408`);
    const last = Math.max(...got408) - t0;
    assert.ok(last < 6000, `the last 408 came ${last} ms after the trickling began (deadline 3 s)`);
    results.push(`     slowloris: /health ${probes.map((p) => p.ms).join(', ')} ms; 300 × 408 by ${last} ms`);
  });

  await check('a storm of 32 streaming clients a round, half disconnecting; slots free, memory back near idle', async () => {
    const stream = JSON.stringify({ prompt: 'Once upon a time', max_tokens: 48, temperature: 0, stream: true });
    let completed = 0, cut = 0;
    const one = (i) => new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/completions', agent: false,
                                 headers: { 'Content-Type': 'application/json' } }, (res) => {
        let n = 0, data = '';
        res.on('data', (d) => {
          data += d;
          if (i % 2 === 0 && ++n === 2) { ++cut; req.destroy(); resolve(); }
        });
        res.on('end', () => { if (i % 2) { assert.match(data, /data: \[DONE\]/); ++completed; } resolve(); });
        res.on('error', () => resolve());
      });
      req.on('error', (e) => (i % 2 === 0 ? resolve() : reject(e)));
      req.setTimeout(20000, () => req.destroy(new Error('stream: no answer within 20 s')));
      req.end(stream);
    });
    const rounds = Number(process.env.SLM_ABUSE_ROUNDS || 3);  // more for a soak run
    for (let round = 0; round < rounds; ++round) await Promise.all(Array.from({ length: 32 }, (_, i) => one(i)));
    assert.equal(completed, 16 * rounds);
    let metrics = '';
    for (let k = 0; k < 40; ++k) {
      metrics = (await request('GET', '/metrics')).body;
      if (/slm_slots_active 0\b/.test(metrics) && /slm_queue_depth 0\b/.test(metrics)) break;
      await sleep(100);
    }
    assert.match(metrics, /slm_slots_active 0\b/);
    await sleep(300);
    const after = rss();
    assert.ok(after < idle * 1.25 + 16 * 1048576, `RSS idle ${MiB(idle)} MiB, after the abuse ${MiB(after)} MiB`);
    results.push(`     storm: ${completed} streams completed, ${cut} cut off; RSS idle ${MiB(idle)} MiB, after everything ${MiB(after)} MiB`);
  });

  await check('the server is still up and serving', async () => {
    assert.equal(server.proc.exitCode, null);
    const r = await request('POST', '/v1/completions', completion);
    assert.equal(r.status, 200, r.body);
  });
} finally {
  server.proc.kill('SIGTERM');
}
console.log(results.join('\n'));
if (results.some((r) => r.startsWith('FAIL'))) process.exit(1);
