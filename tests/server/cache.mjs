// cache.mjs - the prompt cache: a warm server (one slot, so every request
// lands on the same cached KV) must give exactly what a cold server gives
// for the same request, while reporting the reused prefix in
// usage.prompt_tokens_details.cached_tokens.  The model's sliding window is
// 16 positions and every shared prefix is longer, so a wrong reuse of the
// sliding layers' ring shows up as different logprobs.
//   G4_URL  warm server (--parallel 1)     G4_COLD_URL  a fresh server, same model
import * as c from './common.mjs';
const { ok, eq, scenario, env } = c;
const COLD = process.env.G4_COLD_URL;

const A = 'The engine loaded its weights, counted its layers and looked at every tensor twice before it trusted one of them.';
const B = 'Then it read the numbers of the prompt, one after another, and wrote its answer slowly.';
const C = 'After that, nobody could say what the small engine would do with a second question about the weather.';

async function post(url, path, body) {
  const r = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const j = await r.json();
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}
const chatBody = (messages) => ({ model: 'x', messages, temperature: 0, max_tokens: 12, logprobs: true, top_logprobs: 5, presence_penalty: 0 });
// a cold run: the cold server's one slot first gets an unrelated prompt, so
// at most the BOS token can be reused
async function cold(path, body) {
  await post(COLD, '/v1/completions', { model: 'x', prompt: 'zz zz', max_tokens: 1 });
  const j = await post(COLD, path, body);
  const d = j.usage.prompt_tokens_details;
  ok(!d || d.cached_tokens <= 1, 'cold run: at most BOS reused', j.usage);
  return j;
}
const lpOf = (j) => j.choices[0].logprobs.content.map((x) => [x.token, x.logprob, x.top_logprobs.map((y) => [y.token, y.logprob])]);

// compare two answers: same text, same tokens, logprobs equal to 1e-4
function same(warm, cold, what) {
  const tw = warm.choices[0].message ? warm.choices[0].message.content : warm.choices[0].text;
  const tc = cold.choices[0].message ? cold.choices[0].message.content : cold.choices[0].text;
  eq(tw, tc, `${what}: warm and cold text`);
  const lw = warm.choices[0].message ? lpOf(warm) : warm.choices[0].logprobs.token_logprobs;
  const lc = cold.choices[0].message ? lpOf(cold) : cold.choices[0].logprobs.token_logprobs;
  let maxd = 0, exact = true;
  const walk = (a, b) => {
    if (typeof a === 'number' && typeof b === 'number') { maxd = Math.max(maxd, Math.abs(a - b)); if (a !== b) exact = false; return true; }
    if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => walk(x, b[i]));
    return a === b;
  };
  ok(walk(lw, lc) && maxd < 1e-4, `${what}: warm and cold logprobs (max diff ${maxd})`, { lw: lw.slice(0, 2), lc: lc.slice(0, 2) });
  return { maxd, exact };
}

await scenario('multi-turn chat', async () => {
  const t1 = [{ role: 'system', content: A }, { role: 'user', content: B }];
  const w1 = await post(env.url, '/v1/chat/completions', chatBody(t1));
  eq(w1.usage.prompt_tokens_details.cached_tokens, 0, 'turn one on a fresh slot: nothing cached');
  const t2 = [...t1, { role: 'assistant', content: w1.choices[0].message.content }, { role: 'user', content: C }];
  const w2 = await post(env.url, '/v1/chat/completions', chatBody(t2));
  const cached = w2.usage.prompt_tokens_details.cached_tokens;
  // the common prefix of the two prompts (gemma4 render + tokenize; the
  // generation prompt's empty thought block is not part of the rendered
  // history); the server may recompute the last shared position
  const want = c.lcp(c.tokenize(c.render(t1)), c.tokenize(c.render(t2)));
  ok(cached >= want - 1 && cached <= want, `turn two: cached_tokens ${cached}, want ${want} (turn one prompt ${w1.usage.prompt_tokens}, turn two ${w2.usage.prompt_tokens})`);
  ok(cached > 16, 'the reused prefix is longer than the sliding window', cached);
  const c2 = await cold('/v1/chat/completions', chatBody(t2));
  eq(c2.usage.prompt_tokens, w2.usage.prompt_tokens, 'turn two: same prompt_tokens warm and cold');
  const s = same(w2, c2, 'turn two');
  c.note(`prompt cache: turn two reused ${cached} of ${w2.usage.prompt_tokens} prompt tokens; logprobs ${s.exact ? 'bit-identical' : 'max diff ' + s.maxd} to a cold server`);
  // turn three, streaming: still identical
  const t3 = [...t2, { role: 'assistant', content: w2.choices[0].message.content }, { role: 'user', content: A }];
  const w3 = await post(env.url, '/v1/chat/completions', chatBody(t3));
  const want3 = c.lcp(c.tokenize(c.render(t2)), c.tokenize(c.render(t3)));
  const c3 = w3.usage.prompt_tokens_details.cached_tokens;
  ok(c3 >= want3 - 1 && c3 <= want3, `turn three: cached ${c3}, want ${want3}`);
  same(w3, await cold('/v1/chat/completions', chatBody(t3)), 'turn three');
});

await scenario('partial prefix (diverges after more than a window)', async () => {
  // A+B, then A+C: the common prefix (A) ends far behind the end of the
  // cached sequence, beyond the sliding ring's reach from there
  const body = (p) => ({ model: 'x', prompt: p, temperature: 0, max_tokens: 12, logprobs: 5 });
  await post(env.url, '/v1/completions', body(A + (' ' + B).repeat(6)));
  const w = await post(env.url, '/v1/completions', body(A + ' ' + C));
  const k = await cold('/v1/completions', body(A + ' ' + C));
  const nA = 1 + c.tokenize(A).length;
  ok(w.usage.prompt_tokens_details === undefined || w.usage.prompt_tokens_details === null ||
     w.usage.prompt_tokens_details.cached_tokens <= nA + 1, 'partial prefix: no more cached than the common part', w.usage);
  c.note(`prompt cache: partial prefix of ${nA} tokens, ${w.usage.prompt_tokens_details ? w.usage.prompt_tokens_details.cached_tokens : '?'} reused`);
  same(w, k, 'partial prefix');
  // a prefix of the cached sequence (shorter prompt): reuse all but the last token
  const w2 = await post(env.url, '/v1/completions', body(A));
  same(w2, await cold('/v1/completions', body(A)), 'prompt that is a prefix of the cache');
  // the same prompt twice: identical (everything but the last position reused)
  const w3 = await post(env.url, '/v1/completions', body(A));
  same(w3, w2, 'identical prompt twice');
  ok(w3.usage.prompt_tokens_details && w3.usage.prompt_tokens_details.cached_tokens >= nA - 1, 'identical prompt twice: cached', w3.usage);
});

c.finish('cache');
