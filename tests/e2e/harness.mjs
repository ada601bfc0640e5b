// Shared by the end-to-end scripts: starts `slm serve` on a free port and resolves once it
// says where it listens.
import { spawn } from 'node:child_process';

// args: everything after `serve` (model, --port 0, limits …). Resolves to
// { proc, port, url, log() } or rejects with the server's stderr when it exits first.
export function startServer(bin, args) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, ['serve', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => {
      err += d.toString();
      const m = err.match(/ready on http:\/\/[^:]+:(\d+)/);
      if (m) resolve({ proc: p, port: Number(m[1]), url: `http://127.0.0.1:${m[1]}/v1`, log: () => err });
    });
    p.on('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)));
  });
}

// Named checks with their time: check(name, fn) records "ok"/"FAIL" lines in results.
// stopAtFirst: print what ran and rethrow on the first failure (later checks depend on it).
export function checker({ stopAtFirst = false } = {}) {
  const state = { results: [], failures: 0 };
  state.check = async (name, fn) => {
    const t0 = Date.now();
    try {
      await fn();
      state.results.push(`ok   ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      ++state.failures;
      state.results.push(`FAIL ${name}: ${e.stack || e}`);
      if (stopAtFirst) {
        console.log(state.results.join('\n'));
        throw e;
      }
    }
  };
  return state;
}
