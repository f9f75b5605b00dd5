// concurrency.mjs - many requests over few slots with random client
// disconnects (loopback only), then: every surviving answer complete and
// well-formed, greedy answers identical to the same request run alone
// (continuous batching must not change a sequence's tokens), no slot or
// queue place leaked, cancellations counted.  Plain fetch: no SDK needed.
//   G4_URL      the server (--parallel 4)
//   G4_SLOW_URL a server on a slower model (--parallel 1) for the cancel-latency part
//   G4_REQUESTS how many requests (default 50)
import * as c from './common.mjs';
const { ok, eq, scenario, env } = c;

const N = Number(process.env.G4_REQUESTS || 50);
const SLOW = process.env.G4_SLOW_URL;
let seed = 12345;
const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };

// one SSE response body -> parsed events; throws on a malformed stream
function parseSSE(text, what) {
  const events = [];
  const blocks = text.split('\n\n');
  const tail = blocks.pop();
  if (tail !== '') throw new Error(`${what}: stream does not end with a blank line: ${JSON.stringify(tail.slice(-80))}`);
  for (const b of blocks) {
    const lines = b.split('\n').filter((l) => !l.startsWith(':'));
    if (!lines.length) continue;
    if (lines.length !== 1 || !lines[0].startsWith('data: ')) throw new Error(`${what}: not one data line: ${JSON.stringify(b.slice(0, 120))}`);
    events.push(lines[0].slice(6));
  }
  if (events[events.length - 1] !== '[DONE]') throw new Error(`${what}: no [DONE] at the end`);
  if (events.indexOf('[DONE]') !== events.length - 1) throw new Error(`${what}: [DONE] before the end`);
  return events.slice(0, -1).map((e) => JSON.parse(e));
}

// check a finished request; returns its text
function checkAnswer(kind, stream, body, maxTokens, wantUsage, what) {
  if (!stream) {
    const j = JSON.parse(body);
    const ch = j.choices && j.choices[0];
    if (kind === 'chat') {
      ok(j.object === 'chat.completion' && ch && typeof ch.message.content === 'string', `${what}: chat shape`, j);
    } else ok(j.object === 'text_completion' && ch && typeof ch.text === 'string', `${what}: completion shape`, j);
    ok(['stop', 'length'].includes(ch && ch.finish_reason), `${what}: finish_reason`, ch);
    const u = j.usage;
    ok(u && u.completion_tokens <= maxTokens && u.total_tokens === u.prompt_tokens + u.completion_tokens, `${what}: usage`, u);
    if (ch && ch.finish_reason === 'length') eq(u.completion_tokens, maxTokens, `${what}: length = max_tokens`);
    return kind === 'chat' ? ch.message.content : ch.text;
  }
  const evs = parseSSE(body, what);
  const obj = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
  ok(evs.length > 0 && evs.every((e) => e.object === obj && e.id === evs[0].id), `${what}: chunk object and id`, evs[0]);
  ok(!evs.some((e) => e.error), `${what}: error event`, evs.find((e) => e.error));
  const withChoice = evs.filter((e) => e.choices && e.choices.length);
  const fins = withChoice.filter((e) => e.choices[0].finish_reason);
  ok(fins.length === 1 && fins[0] === withChoice[withChoice.length - 1] && ['stop', 'length'].includes(fins[0].choices[0].finish_reason),
    `${what}: exactly one finish_reason, last`, fins.map((e) => e.choices[0]));
  const text = withChoice.map((e) => (kind === 'chat' ? e.choices[0].delta.content || '' : e.choices[0].text || '')).join('');
  if (wantUsage) {
    const last = evs[evs.length - 1];
    ok(last.usage && last.choices.length === 0 && last.usage.completion_tokens <= maxTokens, `${what}: usage chunk`, last);
    if (last.usage && fins.length && fins[0].choices[0].finish_reason === 'length') eq(last.usage.completion_tokens, maxTokens, `${what}: length = max_tokens`);
  }
  return text;
}

const PROMPTS = ['Once upon a time', 'The engine read numbers', 'Hello there, how are you?', 'Count: 1 2 3 4'];
function makeRequest(i) {
  const kind = rnd() < 0.6 ? 'chat' : 'completion';
  const stream = rnd() < 0.6;
  const greedy = rnd() < 0.5;
  const p = PROMPTS[Math.floor(rnd() * PROMPTS.length)];
  const maxTokens = 8 + Math.floor(rnd() * 120);
  const body = { model: 'x', max_tokens: maxTokens, temperature: greedy ? 0 : 0.9, seed: i };
  if (kind === 'chat') body.messages = [{ role: 'user', content: p }]; else body.prompt = p;
  const wantUsage = stream && rnd() < 0.5;
  if (stream) { body.stream = true; if (wantUsage) body.stream_options = { include_usage: true }; }
  const abortAfter = rnd() < 0.35 ? Math.floor(rnd() * 60) : -1;
  return { i, kind, stream, greedy, p, maxTokens, body, wantUsage, abortAfter };
}

async function send(url, q) {
  const ctl = new AbortController();
  let timer = null;
  if (q.abortAfter >= 0) timer = setTimeout(() => ctl.abort(), q.abortAfter);
  const path = q.kind === 'chat' ? '/v1/chat/completions' : '/v1/completions';
  try {
    const r = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(q.body), signal: ctl.signal });
    const text = await r.text();
    return { status: r.status, text, aborted: false };
  } catch (e) {
    if (e.name === 'AbortError') return { aborted: true };
    return { error: String(e) };
  } finally { if (timer) clearTimeout(timer); }
}

await scenario('burst with disconnects', async () => {
  const reqs = Array.from({ length: N }, (_, i) => makeRequest(i));
  // references: each greedy request alone (the server is idle)
  const ref = new Map();
  for (const q of reqs.filter((x) => x.greedy)) {
    const key = `${q.kind}|${q.p}|${q.maxTokens}`;
    if (ref.has(key)) continue;
    const r = await send(env.url, { ...q, abortAfter: -1, stream: false, body: { ...q.body, stream: undefined, stream_options: undefined } });
    const j = JSON.parse(r.text);
    ref.set(key, q.kind === 'chat' ? j.choices[0].message.content : j.choices[0].text);
  }
  const m0 = await c.metrics();
  const t0 = Date.now();
  const res = await Promise.all(reqs.map((q) => send(env.url, q)));
  const dt = (Date.now() - t0) / 1000;
  let nOk = 0, nAborted = 0, nSame = 0, nGreedy = 0;
  res.forEach((r, k) => {
    const q = reqs[k], what = `request ${q.i} (${q.kind}${q.stream ? ', stream' : ''}${q.greedy ? ', greedy' : ''})`;
    if (r.aborted) { nAborted++; return; }
    if (r.error) { ok(false, `${what}: transport error`, r.error); return; }
    if (!ok(r.status === 200, `${what}: status`, `${r.status} ${r.text.slice(0, 300)}`)) return;
    let text;
    try { text = checkAnswer(q.kind, q.stream, r.text, q.maxTokens, q.wantUsage, what); } catch (e) { ok(false, `${what}: malformed`, e.message); return; }
    nOk++;
    if (q.greedy) {
      nGreedy++;
      const want = ref.get(`${q.kind}|${q.p}|${q.maxTokens}`);
      if (ok(text === want, `${what}: greedy text differs from the same request alone`, { got: text, want })) nSame++;
    }
  });
  c.note(`concurrency: ${N} requests in ${dt.toFixed(2)} s: ${nOk} complete, ${nAborted} disconnected, ${nSame}/${nGreedy} greedy answers identical to a solo run`);
  ok(nOk >= N / 3, 'most requests complete', { nOk, nAborted });
  // nothing leaked: slots and queue drain
  let m;
  for (let i = 0; i < 200; i++) { m = await c.metrics(); if (m.gemma4_slots_busy === 0 && m.gemma4_queue_depth === 0) break; await c.sleep(50); }
  eq([m.gemma4_slots_busy, m.gemma4_queue_depth], [0, 0], 'after the burst: slots_busy, queue_depth');
  ok(m.gemma4_slots_total === 4, 'slots_total 4', m.gemma4_slots_total);
  const cancelled = (m.gemma4_requests_cancelled_total || 0) - (m0.gemma4_requests_cancelled_total || 0);
  ok(nAborted === 0 || cancelled >= 1, `cancelled requests counted (${cancelled} of ${nAborted} disconnects)`, m);
  ok(cancelled <= nAborted, `no more cancels (${cancelled}) than disconnects (${nAborted})`);
  // the server still answers
  const r = await send(env.url, { ...makeRequest(999), abortAfter: -1 });
  ok(r.status === 200, 'a request after the burst', r);
});

// cancel latency: a long request on a slow model, the client leaves; the
// slot must free quickly and generation must stop.  "Generating" is watched
// through gemma4_kv_cache_used_positions (grows by one per token while the
// slot works) and, for streams, the chunks the client received; the
// request's tokens land in gemma4_generated_tokens_total when it ends.
async function cancelOne(streamed) {
  const what = streamed ? 'streaming' : 'non-streaming';
  const ctl = new AbortController();
  const body = { model: 'x', prompt: 'Once upon a time', max_tokens: 3000, temperature: 1, seed: 5, stream: streamed };
  const m0 = await c.metrics(SLOW);
  let received = 0;
  const p = fetch(SLOW + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: ctl.signal })
    .then(async (r) => {
      const rd = r.body.getReader(), dec = new TextDecoder();
      for (;;) { const x = await rd.read(); if (x.done) break; received += (dec.decode(x.value).match(/^data: \{/gm) || []).length; }
    }).catch(() => {});
  // wait until it generates: 20 chunks received (streamed), or the slot
  // busy for 300 ms (not streamed)
  let m = m0;
  const t0 = Date.now();
  if (streamed) while (received < 20 && Date.now() - t0 < 20000) await c.sleep(5);
  else {
    while (Date.now() - t0 < 20000) { m = await c.metrics(SLOW); if (m.gemma4_slots_busy === 1) break; await c.sleep(10); }
    await c.sleep(300);
  }
  m = await c.metrics(SLOW);
  ok(m.gemma4_slots_busy === 1 && (!streamed || received >= 20), `${what} cancel: the request generates`, { received, busy: m.gemma4_slots_busy });
  const gotAtAbort = received;
  const tAbort = Date.now();
  ctl.abort();
  await p;
  let tFree = -1;
  for (let i = 0; i < 400; i++) { m = await c.metrics(SLOW); if (m.gemma4_slots_busy === 0) { tFree = Date.now(); break; } await c.sleep(5); }
  ok(tFree > 0, `${what} cancel: the slot was freed`, m);
  const lat = (tFree - tAbort) / 1000;
  await c.sleep(300);
  const m2 = await c.metrics(SLOW);
  eq(m2.gemma4_kv_cache_used_positions, m.gemma4_kv_cache_used_positions, `${what} cancel: no more tokens after the slot was freed (KV positions)`);
  eq(m2.gemma4_generated_tokens_total, m.gemma4_generated_tokens_total, `${what} cancel: generated-tokens counter frozen`);
  const nGen = m2.gemma4_generated_tokens_total - (m0.gemma4_generated_tokens_total || 0);
  ok(nGen > 0 && nGen < 3000, `${what} cancel: the request stopped early (${nGen} of 3000 tokens)`);
  eq(m2.gemma4_requests_cancelled_total - (m0.gemma4_requests_cancelled_total || 0), 1, `${what} cancel: counted as cancelled`);
  c.note(`cancel (${what}): slot free ${lat.toFixed(3)} s after the client left (polled every 5 ms); server-measured ${m2.gemma4_cancel_latency_seconds} s; ` +
    `${nGen} tokens generated in all` + (streamed ? `, ${gotAtAbort} chunks received before the abort` : ''));
  ok(lat < 1.0, `${what} cancel: slot freed within 1 s (${lat.toFixed(3)} s)`);
}

if (SLOW) {
  await scenario('cancel latency', async () => {
    await cancelOne(true);
    await cancelOne(false);
  });
}

c.finish('concurrency');
