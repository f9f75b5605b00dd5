// client.mjs - the official `openai` npm client drives `gemma4 serve` as an
// application would: models, chat (plain, streaming with usage, stop, length,
// logprobs, tools auto / required / named / none with streamed argument
// deltas, thinking), completions (plain, streaming, token-id prompts),
// tokenize / detokenize.  The random model's outputs are forced with a
// logit_bias computed from `gemma4 logits` (common.mjs), so every expected
// text below is known in advance and independent of the server.
import * as c from './common.mjs';
const { ok, eq, scenario, env } = c;

const OpenAI = await c.loadOpenAI();
const client = new OpenAI({ baseURL: env.url + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 60000 });
const ALIAS = process.env.G4_ALIAS;
const FILL = 'Hi ' + 'v'.repeat(70);   // pushes the template's tokens out of the 64-token penalty window
const now = () => Math.floor(Date.now() / 1000);

// forced(messages, seqTexts, {tools, think}): the request fields that make
// the server write seqTexts (one token each) after the rendered prompt
function forced(messages, seq, opts = {}) {
  const prompt = c.render(messages, opts);
  const f = c.forceSeq(prompt, [seq]);
  if (!f) throw new Error(`no static bias forces ${seq.join(' ')}`);
  return { params: { ...c.FORCE_PARAMS, logit_bias: f.bias, seed: 42, max_tokens: 40 }, nPrompt: f.promptIds.length, seq: f.seq };
}

function checkCompletionShape(r, what) {
  ok(typeof r.id === 'string' && r.id.startsWith('chatcmpl-') && r.id.length > 9, `${what}: id`, r.id);
  eq(r.object, 'chat.completion', `${what}: object`);
  ok(Number.isInteger(r.created) && Math.abs(r.created - now()) < 120, `${what}: created`, r.created);
  eq(r.model, ALIAS, `${what}: model`);
  ok(Array.isArray(r.choices) && r.choices.length === 1, `${what}: one choice`, r.choices);
  const ch = r.choices[0];
  eq(ch.index, 0, `${what}: choice index`);
  eq(ch.message.role, 'assistant', `${what}: role`);
  const u = r.usage;
  ok(u && Number.isInteger(u.prompt_tokens) && Number.isInteger(u.completion_tokens), `${what}: usage`, u);
  eq(u.total_tokens, u.prompt_tokens + u.completion_tokens, `${what}: total_tokens`);
  ok(u.prompt_tokens_details && Number.isInteger(u.prompt_tokens_details.cached_tokens) &&
     u.prompt_tokens_details.cached_tokens >= 0 && u.prompt_tokens_details.cached_tokens < u.prompt_tokens,
     `${what}: usage.prompt_tokens_details.cached_tokens`, u);
}
// n tokens were generated, the last one an end marker that may or may not count
const genCount = (u, n, what) => ok(u.completion_tokens === n || u.completion_tokens === n - 1,
  `${what}: completion_tokens ${u.completion_tokens}, want ${n - 1} or ${n} (end marker)`);

// streams: collect every chunk, check the common fields
async function collect(stream, what, object = 'chat.completion.chunk') {
  const chunks = [];
  for await (const ch of stream) chunks.push(ch);
  ok(chunks.length > 0, `${what}: no chunks`);
  const id = chunks[0] && chunks[0].id;
  for (const ch of chunks) {
    if (ch.id !== id || ch.object !== object || ch.model !== ALIAS || !Number.isInteger(ch.created)) {
      ok(false, `${what}: chunk fields`, ch); break;
    }
  }
  return chunks;
}

await scenario('models', async () => {
  const list = await client.models.list();
  const data = list.data;
  ok(Array.isArray(data) && data.length === 1, 'models: one model', data);
  eq(data[0].id, ALIAS, 'models: id is the alias');
  eq(data[0].object, 'model', 'models: object');
  ok(Number.isInteger(data[0].created) && typeof data[0].owned_by === 'string', 'models: created, owned_by', data[0]);
  const one = await client.models.retrieve(ALIAS);
  eq(one.id, ALIAS, 'models.retrieve');
  try { await client.models.retrieve('no-such-model'); ok(false, 'models.retrieve of an unknown id succeeded'); }
  catch (e) { ok(e instanceof OpenAI.NotFoundError, 'models.retrieve unknown: NotFoundError', e.message); }
});

const userMsg = [{ role: 'user', content: FILL }];
await scenario('chat plain', async () => {
  const f = forced(userMsg, ['a', 'b', 'c', '<eos>']);
  const r = await client.chat.completions.create({ model: 'anything', messages: userMsg, ...f.params });
  checkCompletionShape(r, 'chat plain');
  eq(r.choices[0].message.content, 'abc', 'chat plain: content');
  eq(r.choices[0].finish_reason, 'stop', 'chat plain: finish_reason');
  ok(!r.choices[0].message.tool_calls || r.choices[0].message.tool_calls.length === 0, 'chat plain: no tool_calls', r.choices[0].message);
  ok(!r.choices[0].message.reasoning_content, 'chat plain: no reasoning_content', r.choices[0].message);
  eq(r.usage.prompt_tokens, f.nPrompt, 'chat plain: prompt_tokens = render + tokenize');
  genCount(r.usage, 4, 'chat plain');

  // the same request again: same answer (temperature 0), prompt now cached
  const r2 = await client.chat.completions.create({ model: ALIAS, messages: userMsg, ...f.params });
  eq(r2.choices[0].message.content, 'abc', 'chat plain again: content');
  ok(r2.id !== r.id, 'chat plain: ids differ between requests', r2.id);

  // max_tokens -> length
  const r3 = await client.chat.completions.create({ model: ALIAS, messages: userMsg, ...f.params, max_tokens: 2 });
  eq(r3.choices[0].message.content, 'ab', 'max_tokens 2: content');
  eq(r3.choices[0].finish_reason, 'length', 'max_tokens 2: finish_reason');
  eq(r3.usage.completion_tokens, 2, 'max_tokens 2: completion_tokens');
  // max_completion_tokens is the same limit
  const r4 = await client.chat.completions.create({ model: ALIAS, messages: userMsg, ...f.params, max_tokens: undefined, max_completion_tokens: 1 });
  eq(r4.choices[0].message.content, 'a', 'max_completion_tokens 1: content');
  eq(r4.choices[0].finish_reason, 'length', 'max_completion_tokens 1: finish_reason');
  // stop strings: the stop text is not returned
  const r5 = await client.chat.completions.create({ model: ALIAS, messages: userMsg, ...f.params, stop: ['c'] });
  eq(r5.choices[0].message.content, 'ab', 'stop c: content');
  eq(r5.choices[0].finish_reason, 'stop', 'stop c: finish_reason');
  const r6 = await client.chat.completions.create({ model: ALIAS, messages: userMsg, ...f.params, stop: 'bc' });
  eq(r6.choices[0].message.content, 'a', 'stop bc (across tokens): content');

  // logprobs (biased request): one entry per token, sorted alternatives
  const r7 = await client.chat.completions.create({ model: ALIAS, messages: userMsg, ...f.params, logprobs: true, top_logprobs: 3 });
  const lp = r7.choices[0].logprobs && r7.choices[0].logprobs.content;
  ok(Array.isArray(lp) && lp.length >= 3, 'logprobs: content array', r7.choices[0].logprobs);
  if (Array.isArray(lp) && lp.length >= 3) {
    eq(lp.slice(0, 3).map((x) => x.token), ['a', 'b', 'c'], 'logprobs: tokens');
    for (const x of lp) {
      ok(typeof x.logprob === 'number' && x.logprob <= 0 && Array.isArray(x.bytes), 'logprobs: entry shape', x);
      ok(Array.isArray(x.top_logprobs) && x.top_logprobs.length === 3, 'logprobs: 3 top_logprobs', x);
      const tl = x.top_logprobs.map((y) => y.logprob);
      ok(tl.every((v, i) => i === 0 || v <= tl[i - 1]), 'logprobs: top_logprobs sorted', tl);
      const same = x.top_logprobs.find((y) => y.token === x.token);
      ok(!same || Math.abs(same.logprob - x.logprob) < 1e-6, 'logprobs: the token has one logprob', x);
    }
    eq(lp[0].bytes, [...Buffer.from('a')], 'logprobs: bytes');
  }
  // logprobs (plain greedy): the first token's logprob is the log-softmax of
  // the logits `gemma4 logits` gives for the same prompt
  {
    const ids = c.tokenize(c.render(userMsg));
    const row = c.logitsAll(ids)[ids.length - 1];
    let mx = -Infinity, am = 0;
    row.forEach((v, i) => { if (v > mx) { mx = v; am = i; } });
    const lse = mx + Math.log(row.reduce((s2, v) => s2 + Math.exp(v - mx), 0));
    const g = await client.chat.completions.create({ model: ALIAS, messages: userMsg, temperature: 0, max_tokens: 1, logprobs: true, top_logprobs: 2 });
    const e0 = g.choices[0].logprobs.content[0];
    const want = row[am] - lse;
    ok(Math.abs(e0.logprob - want) < 2e-3, `greedy logprob ${e0.logprob} = log-softmax of gemma4 logits ${want}`);
    ok(e0.top_logprobs[0].token === e0.token && Math.abs(e0.top_logprobs[0].logprob - e0.logprob) < 1e-6, 'greedy: the token is the top alternative', e0);
    const r2nd = [...row].sort((x, y) => y - x)[1] - lse;
    ok(Math.abs(e0.top_logprobs[1].logprob - r2nd) < 2e-3, 'greedy: second alternative = the second logit', { got: e0.top_logprobs[1], want: r2nd });
  }
  const r8 = await client.chat.completions.create({ model: ALIAS, messages: userMsg, ...f.params });
  ok(r8.choices[0].logprobs === null || r8.choices[0].logprobs === undefined, 'no logprobs unless asked', r8.choices[0].logprobs);
});

await scenario('chat streaming', async () => {
  const f = forced(userMsg, ['a', 'b', 'c', '<eos>']);
  const chunks = await collect(await client.chat.completions.create({
    model: ALIAS, messages: userMsg, ...f.params, stream: true, stream_options: { include_usage: true } }), 'chat stream');
  ok(chunks[0].id.startsWith('chatcmpl-'), 'chat stream: id', chunks[0].id);
  eq(chunks[0].choices[0].delta.role, 'assistant', 'chat stream: first delta has the role');
  const last = chunks[chunks.length - 1];
  eq(last.choices, [], 'chat stream: usage chunk has no choices');
  ok(last.usage && last.usage.prompt_tokens === f.nPrompt, 'chat stream: usage.prompt_tokens', last.usage);
  if (last.usage) { genCount(last.usage, 4, 'chat stream'); eq(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens, 'chat stream: total'); }
  const body = chunks.slice(0, -1);
  ok(body.every((ch) => ch.usage === undefined || ch.usage === null), 'chat stream: usage only in the last chunk', body.find((ch) => ch.usage));
  const text = body.map((ch) => (ch.choices[0] && ch.choices[0].delta.content) || '').join('');
  eq(text, 'abc', 'chat stream: content deltas');
  const fins = body.filter((ch) => ch.choices[0] && ch.choices[0].finish_reason);
  ok(fins.length === 1 && fins[0] === body[body.length - 1], 'chat stream: one finish_reason, in the last choice chunk', fins);
  eq(fins[0] && fins[0].choices[0].finish_reason, 'stop', 'chat stream: finish_reason');
  // without include_usage: no usage chunk
  const c2 = await collect(await client.chat.completions.create({ model: ALIAS, messages: userMsg, ...f.params, stream: true }), 'chat stream no usage');
  ok(c2.every((ch) => !ch.usage && ch.choices.length === 1), 'chat stream without include_usage: no usage chunk', c2[c2.length - 1]);
  // the helper that applications use to accumulate a stream
  const runner = client.chat.completions.stream({ model: ALIAS, messages: userMsg, ...f.params });
  const fc = await runner.finalChatCompletion();
  eq(fc.choices[0].message.content, 'abc', 'chat.completions.stream().finalChatCompletion() content');
});

const TOOLS = [{ type: 'function', function: { name: 'f', description: 'Look a list up',
  parameters: { type: 'object', properties: { k: { type: 'array', items: { type: 'integer' } } }, required: ['k'] } } }];
const CALL = ['<|tool_call>', 'f', '{', 'k', ':', '[', '7', ',', '3', ']', '}', '<tool_call|>', '<|tool_response>'];

function checkToolCall(tc, what, args) {
  ok(Array.isArray(tc) && tc.length === 1, `${what}: one tool call`, tc);
  if (!Array.isArray(tc) || !tc.length) return;
  ok(/^call_[A-Za-z0-9]{8,}$/.test(tc[0].id), `${what}: call id`, tc[0].id);
  eq(tc[0].type, 'function', `${what}: type`);
  eq(tc[0].function.name, 'f', `${what}: name`);
  let parsed = null;
  try { parsed = JSON.parse(tc[0].function.arguments); } catch { /* checked below */ }
  eq(parsed, args, `${what}: arguments (${tc[0].function.arguments})`);
}

await scenario('tools auto', async () => {
  const f = forced(userMsg, CALL, { tools: TOOLS });
  for (const tool_choice of [undefined, 'auto']) {
    const what = `tools ${tool_choice || 'default'}`;
    const r = await client.chat.completions.create({ model: ALIAS, messages: userMsg, tools: TOOLS, tool_choice, ...f.params });
    checkCompletionShape(r, what);
    checkToolCall(r.choices[0].message.tool_calls, what, { k: [7, 3] });
    eq(r.choices[0].finish_reason, 'tool_calls', `${what}: finish_reason`);
    ok(r.choices[0].message.content === null || r.choices[0].message.content === '', `${what}: no content`, r.choices[0].message.content);
    eq(r.usage.prompt_tokens, f.nPrompt, `${what}: prompt_tokens (tools declared)`);
  }
  // streamed: argument deltas reassembled into valid JSON
  const chunks = await collect(await client.chat.completions.create({
    model: ALIAS, messages: userMsg, tools: TOOLS, ...f.params, stream: true }), 'tools stream');
  const calls = [];
  let nArgDeltas = 0, content = '';
  for (const ch of chunks) {
    const d = ch.choices[0] && ch.choices[0].delta;
    if (!d) continue;
    if (d.content) content += d.content;
    for (const t of d.tool_calls || []) {
      if (!calls[t.index]) calls[t.index] = { id: '', name: '', args: '' };
      const k = calls[t.index];
      if (t.id) { ok(!k.id, 'tools stream: id sent once', t); k.id = t.id; }
      if (t.function && t.function.name) { ok(!k.name, 'tools stream: name sent once', t); k.name = t.function.name; }
      if (t.function && t.function.arguments) { k.args += t.function.arguments; nArgDeltas++; }
      if (t.type) eq(t.type, 'function', 'tools stream: type');
    }
  }
  eq(content, '', 'tools stream: no content');
  ok(calls.length === 1 && /^call_/.test(calls[0].id) && calls[0].name === 'f', 'tools stream: one call with id and name', calls);
  let args = null;
  try { args = JSON.parse(calls[0] && calls[0].args); } catch { /* below */ }
  eq(args, { k: [7, 3] }, 'tools stream: reassembled arguments');
  ok(nArgDeltas >= 2, `tools stream: arguments streamed as deltas (${nArgDeltas} deltas)`);
  const fin = chunks.filter((ch) => ch.choices[0] && ch.choices[0].finish_reason);
  eq(fin.map((ch) => ch.choices[0].finish_reason), ['tool_calls'], 'tools stream: finish_reason');
  // the SDK's stream helper sees the same call
  const fc = await client.chat.completions.stream({ model: ALIAS, messages: userMsg, tools: TOOLS, ...f.params }).finalChatCompletion();
  checkToolCall(fc.choices[0].message.tool_calls, 'tools stream helper', { k: [7, 3] });

  // the tool result goes back: an assistant message with the call, a tool message
  const tc = (await client.chat.completions.create({ model: ALIAS, messages: userMsg, tools: TOOLS, ...f.params })).choices[0].message.tool_calls;
  const follow = [...userMsg, { role: 'assistant', content: null, tool_calls: tc }, { role: 'tool', tool_call_id: tc[0].id, content: '{"n": 2}' }];
  const f2 = forced(follow, ['x', 'y', '<eos>'], { tools: TOOLS });
  const r2 = await client.chat.completions.create({ model: ALIAS, messages: follow, tools: TOOLS, ...f2.params });
  eq(r2.choices[0].message.content, 'xy', 'after a tool result: content');
  eq(r2.usage.prompt_tokens, f2.nPrompt, 'after a tool result: prompt_tokens = render + tokenize');
});

await scenario('parallel_tool_calls', async () => {
  // after the call the model (forced) goes on writing "xy": by default that
  // is content next to the call; with parallel_tool_calls false the answer
  // ends right after the first complete call
  const seq = ['<|tool_call>', 'f', '{', '}', '<tool_call|>', 'x', 'y', '<eos>'];
  const f = forced(userMsg, seq, { tools: TOOLS });
  const r = await client.chat.completions.create({ model: ALIAS, messages: userMsg, tools: TOOLS, ...f.params });
  checkToolCall(r.choices[0].message.tool_calls, 'call then text', {});
  eq(r.choices[0].message.content, 'xy', 'call then text: the text is content');
  eq(r.choices[0].finish_reason, 'tool_calls', 'call then text: finish_reason');
  const r2 = await client.chat.completions.create({ model: ALIAS, messages: userMsg, tools: TOOLS, parallel_tool_calls: false, ...f.params });
  checkToolCall(r2.choices[0].message.tool_calls, 'parallel_tool_calls false', {});
  ok(!r2.choices[0].message.content, 'parallel_tool_calls false: nothing after the call', r2.choices[0].message.content);
  eq(r2.choices[0].finish_reason, 'tool_calls', 'parallel_tool_calls false: finish_reason');
  eq(r2.usage.completion_tokens, 5, 'parallel_tool_calls false: generation stopped at <tool_call|>');
});

await scenario('tool calls next to text and thoughts', async () => {
  // text, then a call
  const f = forced(userMsg, ['a', 'b', '<|tool_call>', 'f', '{', '}', '<tool_call|>', '<|tool_response>'], { tools: TOOLS });
  const r = await client.chat.completions.create({ model: ALIAS, messages: userMsg, tools: TOOLS, ...f.params });
  eq(r.choices[0].message.content, 'ab', 'text then call: content');
  checkToolCall(r.choices[0].message.tool_calls, 'text then call', {});
  eq(r.choices[0].finish_reason, 'tool_calls', 'text then call: finish_reason');
  const chunks = await collect(await client.chat.completions.create({ model: ALIAS, messages: userMsg, tools: TOOLS, ...f.params, stream: true }), 'text then call stream');
  let content = '', order = '';
  for (const ch of chunks) {
    const d = ch.choices[0] && ch.choices[0].delta;
    if (!d) continue;
    if (d.content) { content += d.content; if (!order.endsWith('c')) order += 'c'; }
    if (d.tool_calls && d.tool_calls.length && !order.endsWith('t')) order += 't';
  }
  eq([content, order], ['ab', 'ct'], 'text then call stream: content deltas, then the call');
  // thinking on, a thought, then a call
  const ft = forced(userMsg, ['<|channel>', 'x', '<channel|>', '<|tool_call>', 'f', '{', '}', '<tool_call|>', '<|tool_response>'], { tools: TOOLS, think: true });
  const r2 = await client.chat.completions.create({ model: ALIAS, messages: userMsg, tools: TOOLS, reasoning_effort: 'medium', ...ft.params });
  eq(r2.choices[0].message.reasoning_content, 'x', 'thought then call: reasoning_content');
  ok(!r2.choices[0].message.content, 'thought then call: no content', r2.choices[0].message.content);
  checkToolCall(r2.choices[0].message.tool_calls, 'thought then call', {});
  eq(r2.usage.prompt_tokens, ft.nPrompt, 'thought then call: prompt (thinking on, tools)');
});

await scenario('UTF-8 across tokens', async () => {
  // byte tokens: é = C3 A9, € = E2 82 AC; deltas must never split a character
  const bytes = c.tokenize('é€');
  const f = forced(userMsg, [...bytes, '<eos>']);
  const r = await client.chat.completions.create({ model: ALIAS, messages: userMsg, ...f.params });
  eq(r.choices[0].message.content, 'é€', 'UTF-8: content');
  const chunks = await collect(await client.chat.completions.create({ model: ALIAS, messages: userMsg, ...f.params, stream: true }), 'UTF-8 stream');
  const deltas = chunks.map((ch) => (ch.choices[0] && ch.choices[0].delta.content) || '').filter((d) => d);
  eq(deltas.join(''), 'é€', 'UTF-8 stream: content');
  ok(deltas.every((d) => !d.includes('\uFFFD')), 'UTF-8 stream: no replacement characters in deltas', deltas);
});

await scenario('tools none', async () => {
  // tool_choice none: the tools are not declared, the answer is plain content
  const f = forced(userMsg, ['a', 'b', 'c', '<eos>']);
  const r = await client.chat.completions.create({ model: ALIAS, messages: userMsg, tools: TOOLS, tool_choice: 'none', ...f.params });
  eq(r.choices[0].message.content, 'abc', 'tool_choice none: content');
  eq(r.usage.prompt_tokens, f.nPrompt, 'tool_choice none: tools not in the prompt');
  eq(r.choices[0].finish_reason, 'stop', 'tool_choice none: finish_reason');
});

await scenario('tools required and named', async () => {
  // the server starts the answer with the call (docs/server-api-notes.md):
  // "<|tool_call>call:NAME{" for a named function, "<|tool_call>call:" for
  // required; the model (forced here) completes it
  const prompt = c.render(userMsg, { tools: TOOLS });
  const cases = [
    [{ type: 'function', function: { name: 'f' } }, 'named', '<|tool_call>call:f{', ['}', '<tool_call|>', '<|tool_response>']],
    ['required', 'required', '<|tool_call>call:', ['f', '{', '}', '<tool_call|>', '<|tool_response>']],
  ];
  for (const [tool_choice, what, prefix, seq] of cases) {
    const fs = c.forceSeq(prompt + prefix, [seq]);
    if (!ok(fs, `tools ${what}: a bias forces the rest of the call`)) continue;
    const params = { ...c.FORCE_PARAMS, logit_bias: fs.bias, seed: 1, max_tokens: 20 };
    const r = await client.chat.completions.create({ model: ALIAS, messages: userMsg, tools: TOOLS, tool_choice, ...params });
    checkToolCall(r.choices[0].message.tool_calls, `tools ${what}`, {});
    eq(r.choices[0].finish_reason, 'tool_calls', `tools ${what}: finish_reason`);
    ok(!r.choices[0].message.content, `tools ${what}: no content`, r.choices[0].message.content);
    const np = fs.promptIds.length, npre = c.tokenize(prefix).length;
    ok(r.usage.prompt_tokens === np || r.usage.prompt_tokens === np - npre, `tools ${what}: prompt_tokens ${r.usage.prompt_tokens}, want ${np - npre} (+${npre} forced)`);
    const chunks = await collect(await client.chat.completions.create({
      model: ALIAS, messages: userMsg, tools: TOOLS, tool_choice, ...params, stream: true }), `tools ${what} stream`);
    let args = '', name = '', content = '';
    for (const ch of chunks) {
      const d = ch.choices[0] && ch.choices[0].delta;
      if (!d) continue;
      if (d.content) content += d.content;
      for (const t of d.tool_calls || []) { if (t.function && t.function.name) name += t.function.name; if (t.function && t.function.arguments) args += t.function.arguments; }
    }
    eq([name, args, content], ['f', '{}', ''], `tools ${what} stream: name, arguments, content`);
  }
});

await scenario('thinking', async () => {
  const seq = ['<|channel>', 'x', 'y', '<channel|>', 'a', 'b', '<eos>'];
  const f = forced(userMsg, seq, { think: true });
  for (const [extra, what] of [[{ reasoning_effort: 'low' }, 'reasoning_effort'], [{ chat_template_kwargs: { enable_thinking: true } }, 'enable_thinking']]) {
    const r = await client.chat.completions.create({ model: ALIAS, messages: userMsg, ...f.params, ...extra });
    const m = r.choices[0].message;
    eq(m.reasoning_content, 'xy', `thinking ${what}: reasoning_content`);
    eq(m.content, 'ab', `thinking ${what}: content`);
    eq(r.usage.prompt_tokens, f.nPrompt, `thinking ${what}: prompt rendered with thinking on`);
    eq(r.choices[0].finish_reason, 'stop', `thinking ${what}: finish_reason`);
    const rt = r.usage.completion_tokens_details && r.usage.completion_tokens_details.reasoning_tokens;
    ok(Number.isInteger(rt) && rt >= 2 && rt <= 4, `thinking ${what}: reasoning_tokens ${rt}`, r.usage);
  }
  const chunks = await collect(await client.chat.completions.create({
    model: ALIAS, messages: userMsg, ...f.params, reasoning_effort: 'high', stream: true }), 'thinking stream');
  let rc = '', ct = '';
  for (const ch of chunks) {
    const d = ch.choices[0] && ch.choices[0].delta;
    if (!d) continue;
    if (d.reasoning_content) rc += d.reasoning_content;
    if (d.content) ct += d.content;
  }
  eq(rc, 'xy', 'thinking stream: reasoning_content deltas');
  eq(ct, 'ab', 'thinking stream: content deltas never carry the thought');
  // thinking off (default, and reasoning_effort none): the prompt has the empty thought block
  const fo = forced(userMsg, ['a', 'b', 'c', '<eos>']);
  for (const extra of [{}, { reasoning_effort: 'none' }, { chat_template_kwargs: { enable_thinking: false } }]) {
    const r = await client.chat.completions.create({ model: ALIAS, messages: userMsg, ...fo.params, ...extra });
    eq(r.usage.prompt_tokens, fo.nPrompt, `thinking off ${JSON.stringify(extra)}: prompt`);
    eq(r.choices[0].message.content, 'abc', `thinking off ${JSON.stringify(extra)}: content`);
  }
});

await scenario('multi-part and roles', async () => {
  const msgs = [
    { role: 'system', content: 'Be brief.' },
    { role: 'developer', content: 'Really brief.' },
    { role: 'user', content: [{ type: 'text', text: 'Hi' }, { type: 'text', text: 'v'.repeat(70) }] },
  ];
  const f = forced(msgs, ['a', 'b', '<eos>']);
  const r = await client.chat.completions.create({ model: ALIAS, messages: msgs, ...f.params });
  eq(r.usage.prompt_tokens, f.nPrompt, 'system + developer + text parts: prompt_tokens');
  eq(r.choices[0].message.content, 'ab', 'system + developer + text parts: content');
});

await scenario('completions', async () => {
  const prompt = FILL;
  const ids = c.tokenize(prompt);
  const bos = c.tokenId('<bos>');
  const seqIds = ['a', 'b', 'c', '<eos>'].map((t) => c.tokenId(t));
  const s = c.solveBias([bos, ...ids], seqIds);
  ok(s, 'completions: a bias forces the sequence');
  if (!s) return;
  const params = { ...c.FORCE_PARAMS, logit_bias: s.bias, max_tokens: 30, seed: 1 };
  const r = await client.completions.create({ model: ALIAS, prompt, ...params });
  ok(typeof r.id === 'string' && r.id.startsWith('cmpl-'), 'completions: id', r.id);
  eq(r.object, 'text_completion', 'completions: object');
  eq(r.model, ALIAS, 'completions: model');
  eq(r.choices.length, 1, 'completions: one choice');
  eq(r.choices[0].text, 'abc', 'completions: text');
  eq(r.choices[0].index, 0, 'completions: index');
  eq(r.choices[0].finish_reason, 'stop', 'completions: finish_reason');
  eq(r.usage.prompt_tokens, ids.length + 1, 'completions: prompt_tokens = BOS + tokenize');
  genCount(r.usage, 4, 'completions');
  eq(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens, 'completions: total');
  // the same prompt given as token ids
  const r2 = await client.completions.create({ model: ALIAS, prompt: [bos, ...ids], ...params });
  eq(r2.choices[0].text, 'abc', 'completions from token ids: text');
  eq(r2.usage.prompt_tokens, ids.length + 1, 'completions from token ids: prompt_tokens (no second BOS)');
  // length
  const r3 = await client.completions.create({ model: ALIAS, prompt, ...params, max_tokens: 2 });
  eq([r3.choices[0].text, r3.choices[0].finish_reason], ['ab', 'length'], 'completions max_tokens 2');
  // streaming
  const chunks = [];
  for await (const ch of await client.completions.create({ model: ALIAS, prompt, ...params, stream: true, stream_options: { include_usage: true } })) chunks.push(ch);
  ok(chunks.every((ch) => ch.object === 'text_completion' && ch.id === chunks[0].id), 'completions stream: object and id', chunks[0]);
  const withChoice = chunks.filter((ch) => ch.choices && ch.choices.length);
  eq(withChoice.map((ch) => ch.choices[0].text).join(''), 'abc', 'completions stream: text deltas');
  eq(withChoice.filter((ch) => ch.choices[0].finish_reason).map((ch) => ch.choices[0].finish_reason), ['stop'], 'completions stream: finish_reason');
  const u = chunks[chunks.length - 1].usage;
  ok(u && u.prompt_tokens === ids.length + 1, 'completions stream: usage chunk', chunks[chunks.length - 1]);
});

await scenario('tokenize and detokenize', async () => {
  const text = 'Hello <|channel>world';
  const want = c.tokenize(text);
  const r = await c.http('POST', '/tokenize', { content: text });
  eq(r.status, 200, '/tokenize status');
  eq(r.json && r.json.tokens, want, '/tokenize = gemma4 tokenize');
  const r2 = await c.http('POST', '/detokenize', { tokens: want });
  eq(r2.json && r2.json.content, text, '/detokenize round trip');
  const r3 = await c.http('POST', '/tokenize', { content: text, with_pieces: true });
  ok(r3.json && Array.isArray(r3.json.tokens) && r3.json.tokens.every((t, i) => t.id === want[i] && typeof t.piece === 'string'), '/tokenize with_pieces', r3.json);
});

await scenario('errors through the client', async () => {
  try {
    await client.chat.completions.create({ model: ALIAS, messages: [{ role: 'wizard', content: 'x' }] });
    ok(false, 'unknown role accepted');
  } catch (e) {
    ok(e instanceof OpenAI.BadRequestError, 'unknown role: BadRequestError', e.constructor.name);
    eq(e.status, 400, 'unknown role: status');
    ok(e.error && e.error.param === 'messages[0].role' && /wizard/.test(e.message), 'unknown role: param and message', e.error);
  }
  try {
    await client.chat.completions.create({ model: ALIAS, messages: userMsg, max_tokens: -3 });
    ok(false, 'negative max_tokens accepted');
  } catch (e) { ok(e.status === 400 && e.code === 'invalid_value' && e.param === 'max_tokens', 'max_tokens -3: code and param', e.error); }
});

await scenario('what other clients send', async () => {
  // nulls for optional fields (LangChain and others send them), unknown
  // fields, response_format text, user names: all accepted as absent/ignored
  const f = forced(userMsg, ['a', 'b', 'c', '<eos>']);
  const body = { model: ALIAS, messages: [{ role: 'user', content: FILL, name: 'alice' }], ...f.params,
    stop: null, n: 1, stream: false, tools: null, tool_choice: null, response_format: { type: 'text' }, user: 'u1',
    metadata: { k: 'v' }, store: false, stream_options: null, top_logprobs: null, logprobs: null, parallel_tool_calls: null };
  const r = await c.http('POST', '/v1/chat/completions', body);
  ok(r.status === 200 && r.json && r.json.choices[0].message.content === 'abc', 'nulls, unknown fields, response_format text', r.text.slice(0, 300));
  ok(/^application\/json/.test(r.headers.get('content-type') || ''), 'non-streamed Content-Type application/json', r.headers.get('content-type'));
  const rs = await fetch(env.url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true }) });
  ok(/^text\/event-stream/.test(rs.headers.get('content-type') || ''), 'streamed Content-Type text/event-stream', rs.headers.get('content-type'));
  await rs.text();
  // seeded sampling: same seed, same text; the seed matters
  const sample = async (seed) => (await client.chat.completions.create({ model: ALIAS, messages: userMsg, temperature: 1, top_p: 0.95, top_k: 50, min_p: 0.01, seed, max_tokens: 12 })).choices[0].message.content;
  const s1 = await sample(7), s2 = await sample(7), s3 = await sample(8), s4 = await sample(9);
  eq(s2, s1, 'same seed, same sampled text');
  ok(s3 !== s1 || s4 !== s1, 'seeds 7, 8, 9 do not all give the same text', [s1, s3, s4]);
  // max_tokens up to the whole context: generation stops when the context is full
  const full = await client.chat.completions.create({ model: ALIAS, messages: userMsg, temperature: 0, max_tokens: 1024 });
  eq(full.choices[0].finish_reason, 'length', 'context full: finish_reason length');
  ok(full.usage.prompt_tokens + full.usage.completion_tokens <= 1024 + 1 && full.usage.completion_tokens >= 1024 - full.usage.prompt_tokens - 1,
    'context full: prompt + completion = the context (1024)', full.usage);
  // async iteration over the model list, as the SDK docs show
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  eq(ids, [ALIAS], 'for await over models.list()');
});

// metrics: what the requests above did
await scenario('metrics', async () => {
  const m = await c.idleMetrics();
  ok(m['gemma4_slots_busy'] === 0 && m['gemma4_queue_depth'] === 0, 'metrics: idle at the end (within 2 s)',
    { slots_busy: m['gemma4_slots_busy'], queue_depth: m['gemma4_queue_depth'] });
  ok(m['gemma4_generated_tokens_total'] > 20 && m['gemma4_prompt_tokens_total'] > 100, 'metrics: token counters', m);
  ok(m['gemma4_cached_prompt_tokens_total'] > 0, 'metrics: cached prompt tokens counted', m);
  ok((m['gemma4_requests_total{endpoint="/v1/chat/completions",status="200"}'] || 0) >= 20, 'metrics: chat requests counted by status', Object.keys(m).filter((k) => k.startsWith('gemma4_requests_total')));
  eq(m['gemma4_ready'], 1, 'metrics: ready');
  // the exposition format: HELP/TYPE comments, then samples of declared metrics
  const text = await (await fetch(env.url + '/metrics')).text();
  const typed = new Set(), bad = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    let mt;
    if ((mt = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) { typed.add(mt[1]); continue; }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+$/.test(line)) continue;
    mt = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$/.exec(line);
    if (!mt || !typed.has(mt[1])) bad.push(line);
  }
  eq(bad, [], 'metrics: every line is a HELP/TYPE comment or a sample of a declared metric');
  for (const name of ['gemma4_requests_total', 'gemma4_requests_cancelled_total', 'gemma4_prompt_tokens_total', 'gemma4_generated_tokens_total',
    'gemma4_cached_prompt_tokens_total', 'gemma4_generation_tokens_per_second', 'gemma4_queue_depth', 'gemma4_slots_busy',
    'gemma4_kv_cache_used_positions', 'gemma4_kv_cache_usage_ratio', 'gemma4_cancel_latency_seconds'])
    ok(typed.has(name), `metrics: ${name} declared`);
  ok(text.endsWith('\n'), 'metrics: ends with a newline');
  const ct = (await fetch(env.url + '/metrics')).headers.get('content-type') || '';
  ok(/^text\/plain/.test(ct), 'metrics: Content-Type text/plain', ct);
});

c.finish('client');
