// common.mjs - shared by the Node server tests: the pinned official client,
// pass/fail bookkeeping, raw HTTP helpers, and "forced outputs" for a
// random-weight model.
//
// Forcing: a random model writes noise, so the tests make it write a chosen
// token sequence with temperature 0 and a static logit_bias.  The bias is
// computed here, independently of the server, from the logits that
// `gemma4 logits --all` gives for the rendered prompt followed by the wanted
// tokens: at step t the wanted token must beat every other biased token by a
// margin m, i.e. b[y] - b[x] <= L_t[x] - L_t[y] - m, a system of difference
// constraints solved with Bellman-Ford (largest m by bisection).  Biases end
// at >= 60 + m above every unbiased token (softcap 30 bounds logits to
// (-30, 30)), so nothing outside the sequence can win.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

export const env = {
  G: process.env.G4_BIN,           // the gemma4 binary
  model: process.env.G4_MODEL,     // the model the server runs
  url: process.env.G4_URL,         // http://127.0.0.1:PORT
  npm: process.env.G4_NPM_OPENAI_DIR,
  scale: process.env.G4_SERVER_TESTS_SCALE || 'full',
  mmproj: process.env.G4_MMPROJ || '',
};

export async function loadOpenAI() {
  const m = await import(join(env.npm, 'node_modules', 'openai', 'index.mjs'));
  return m.default;
}

let pass = 0, fail = 0;
export function ok(cond, what, detail) {
  if (cond) { pass++; return true; }
  fail++;
  let d = '';
  if (detail !== undefined) {
    d = typeof detail === 'string' ? detail : JSON.stringify(detail);
    if (d.length > 600) d = d.slice(0, 600) + '...';
  }
  console.error(`FAIL: ${what}${d ? ': ' + d : ''}`);
  return false;
}
export function eq(got, want, what) {
  return ok(JSON.stringify(got) === JSON.stringify(want), what, `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}
export function note(s) { console.log(s); }
// run one named scenario; an exception is a failure of that scenario only
export async function scenario(name, fn) {
  try { await fn(); } catch (e) {
    ok(false, `${name}: exception`, `${e && e.constructor && e.constructor.name}: ${e && e.message}${e && e.status ? ' (status ' + e.status + ')' : ''}`);
  }
}
export function finish(name) {
  console.log(`${name}: ${pass} passed, ${fail} failed`);
  process.exit(fail === 0 ? 0 : 1);
}

// ---- the gemma4 CLI as an independent reference -------------------------
const tmp = mkdtempSync(join(tmpdir(), 'g4-srvtest-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
export function render(messages, { tools = null, think = false } = {}) {
  const mf = join(tmp, 'msg.json');
  writeFileSync(mf, JSON.stringify(messages));
  const args = ['render', '--messages', mf];
  if (tools) { const tf = join(tmp, 'tools.json'); writeFileSync(tf, JSON.stringify(tools)); args.push('--tools', tf); }
  if (think) args.push('--think');
  return execFileSync(env.G, args, { encoding: 'utf8' });
}
export function tokenize(text, model = env.model) {
  const out = execFileSync(env.G, ['tokenize', '-m', model, text], { encoding: 'utf8' }).trim();
  return out === '' ? [] : out.split(/\s+/).map(Number);
}
// one id for a text that is a single token (special markers)
export function tokenId(text, model = env.model) {
  const ids = tokenize(text, model);
  if (ids.length !== 1) throw new Error(`'${text}' is ${ids.length} tokens, not 1`);
  return ids[0];
}
export function nVocab(model = env.model) {
  const out = execFileSync(env.G, ['info', model], { encoding: 'utf8' });
  return Number(/^vocab:\s+(\d+)/m.exec(out)[1]);
}
// logits of every position (rows of n_vocab floats)
export function logitsAll(ids, model = env.model) {
  const o = join(tmp, 'l.f32');
  execFileSync(env.G, ['logits', '-m', model, '--tokens', ids.join(','), '--all', '-o', o, '-t', '1'], { stdio: 'ignore' });
  const buf = readFileSync(o);
  const f = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const nv = f.length / ids.length;
  const rows = [];
  for (let i = 0; i < ids.length; i++) rows.push(f.subarray(i * nv, (i + 1) * nv));
  return rows;
}

// The request fields that go with a forced bias (the sampler applies the
// bias first, then the penalties: a used token drops from ~100 to ~10).
export const FORCE_PARAMS = { temperature: 0, repetition_penalty: 10, presence_penalty: 2, frequency_penalty: 2 };

// greedy pick under the server's sampler chain (bias, then penalties over the
// history), for the checks of a solution
function pick(row, bias, hist) {
  let best = -1, bv = -Infinity, second = -Infinity;
  const count = new Map();
  for (const h of hist) count.set(h, (count.get(h) || 0) + 1);
  for (let y = 0; y < row.length; y++) {
    let v = row[y] + (bias[y] || 0);
    const c = count.get(y);
    if (c) {
      v = v > 0 ? v / FORCE_PARAMS.repetition_penalty : v * FORCE_PARAMS.repetition_penalty;
      v -= FORCE_PARAMS.presence_penalty + FORCE_PARAMS.frequency_penalty * c;
    }
    if (v > bv) { second = bv; bv = v; best = y; } else if (v > second) second = v;
  }
  return { best, gap: bv - second };
}

// solveBias(promptIds, seq): {bias: {id: value}, margin} that makes greedy
// decoding with FORCE_PARAMS write exactly seq (distinct tokens), whether or
// not the server counts prompt tokens in the penalty history; null if none.
export function solveBias(promptIds, seq, minMargin = 1.0) {
  if (new Set(seq).size !== seq.length) throw new Error('forced sequences need distinct tokens');
  const rows = logitsAll(promptIds.concat(seq.slice(0, -1)));
  const L = seq.map((_, t) => rows[promptIds.length - 1 + t]);
  for (const m of [4, 2, minMargin]) {
    // earlier tokens outrank later ones at each step: b[t] >= b[j] + L_t[j] - L_t[t] + m
    const b = new Array(seq.length).fill(0);
    for (let t = seq.length - 2; t >= 0; t--)
      for (let j = t + 1; j < seq.length; j++)
        b[t] = Math.max(b[t], b[j] + L[t][seq[j]] - L[t][seq[t]] + m);
    const bias = {};
    seq.forEach((id, t) => { bias[id] = Math.round((b[t] - b[0] + 100) * 1000) / 1000; });
    if (Math.min(...Object.values(bias)) < -100) continue;
    let good = true, gap = Infinity;
    for (const withPrompt of [false, true]) {
      for (let t = 0; t < seq.length && good; t++) {
        const hist = (withPrompt ? promptIds : []).concat(seq.slice(0, t)).slice(-64);
        const r = pick(L[t], bias, hist);
        if (r.best !== seq[t] || r.gap < minMargin) good = false;
        gap = Math.min(gap, r.gap);
      }
    }
    if (good) return { bias, margin: gap };
  }
  return null;
}

// forceChat(messages, wantTexts, opts): search the token sequences for one of
// the candidate outputs that a static bias can force; returns
// {bias, seq, text, margin}.  wantTexts: array of arrays of token texts.
export function forceSeq(promptText, candidates) {
  const promptIds = tokenize(promptText);
  for (const c of candidates) {
    const seq = c.map((t) => (typeof t === 'number' ? t : tokenId(t)));
    const r = solveBias(promptIds, seq);
    if (r) return { ...r, seq, promptIds };
  }
  return null;
}

// length of the longest common prefix of two id lists
export function lcp(a, b) { let i = 0; while (i < a.length && i < b.length && a[i] === b[i]) i++; return i; }

// ---- raw HTTP --------------------------------------------------------------
export async function http(method, path, body, headers = {}) {
  const h = { ...headers };
  let b = body;
  if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array) && !(body instanceof FormData)) {
    b = JSON.stringify(body); h['content-type'] = 'application/json';
  }
  const r = await fetch(env.url + path, { method, body: b, headers: h });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, text, json };
}

// Prometheus text -> {name{labels}: value}
export async function metrics(url = env.url) {
  const r = await fetch(url + '/metrics');
  const out = {};
  for (const line of (await r.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i).trim()] = Number(line.slice(i + 1));
  }
  return out;
}

// metrics once slots and queue are idle (the last answer may be sent just
// before its slot is released), or after 2 s
export async function idleMetrics(url = env.url) {
  let m;
  for (let i = 0; i < 100; i++) {
    m = await metrics(url);
    if (m.gemma4_slots_busy === 0 && m.gemma4_queue_depth === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return m;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
