// media.mjs - images, audio and transcriptions through the official client
// against a server with an mmproj (random weights: the words mean nothing,
// the shapes, counts and cache behaviour are what is checked).  The PNG and
// WAV inputs are written here from scratch.
import { deflateSync } from 'node:zlib';
import * as c from './common.mjs';
const { ok, eq, scenario, env } = c;

const OpenAI = await c.loadOpenAI();
const { toFile } = await import(`${env.npm}/node_modules/openai/index.mjs`);
const client = new OpenAI({ baseURL: env.url + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 600000 });
const ALIAS = process.env.G4_ALIAS;

// ---- a PNG encoder (RGB, no filter) and a WAV writer -------------------------
const CRC = new Uint32Array(256).map((_, n) => { let c2 = n; for (let k = 0; k < 8; k++) c2 = c2 & 1 ? 0xedb88320 ^ (c2 >>> 1) : c2 >>> 1; return c2 >>> 0; });
function crc32(buf) { let x = 0xffffffff; for (const b of buf) x = CRC[(x ^ b) & 0xff] ^ (x >>> 8); return (x ^ 0xffffffff) >>> 0; }
function chunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
export function png(w, h, seed = 1) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = (x * 4 + seed * 40) & 255; raw[o + 1] = (y * 4) & 255; raw[o + 2] = ((x ^ y) * seed) & 255;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
export function wav(seconds, rate = 16000, freq = 440) {
  const n = Math.round(seconds * rate), data = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) data.writeInt16LE(Math.round(8000 * Math.sin(2 * Math.PI * freq * i / rate) * (1 + 0.5 * Math.sin(i / 800))), i * 2);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + data.length, 4); h.write('WAVE', 8); h.write('fmt ', 12);
  h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22); h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28); h.writeUInt16LE(2, 32); h.writeUInt16LE(16, 34); h.write('data', 36); h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

const IMG = png(96, 64), IMG2 = png(96, 64, 3), WAV = wav(1.0);
const dataUrl = (b) => `data:image/png;base64,${b.toString('base64')}`;
const base = { model: ALIAS, temperature: 0, max_tokens: 4, seed: 3 };
const textOnly = async (text) => (await client.chat.completions.create({ ...base, messages: [{ role: 'user', content: text }] })).usage.prompt_tokens;

await scenario('image', async () => {
  const parts = [{ type: 'text', text: 'What is in this picture?' }, { type: 'image_url', image_url: { url: dataUrl(IMG) } }];
  const msgs = [{ role: 'user', content: parts }];
  const nText = await textOnly('What is in this picture?');
  const r = await client.chat.completions.create({ ...base, messages: msgs });
  eq(r.object, 'chat.completion', 'image: object');
  ok(['stop', 'length'].includes(r.choices[0].finish_reason), 'image: finish_reason', r.choices[0].finish_reason);
  ok(typeof r.choices[0].message.content === 'string', 'image: content is a string', r.choices[0].message);
  const nImg = r.usage.prompt_tokens - nText;
  ok(nImg >= 2, `image: the image adds soft tokens to the prompt (${nImg})`, r.usage);
  // turn two (right after turn one: the slot still holds it) reuses the
  // image from the cache: no re-processing
  const turn2 = [...msgs, { role: 'assistant', content: r.choices[0].message.content || 'x' }, { role: 'user', content: 'And the colours?' }];
  const r3 = await client.chat.completions.create({ ...base, messages: turn2 });
  const cached = r3.usage.prompt_tokens_details.cached_tokens;
  // expected: the common prefix of the two rendered prompts (placeholder
  // form, gemma4 render + tokenize), the placeholder standing for the image's
  // positions; the server may recompute the last shared position
  const ph1 = c.tokenize(c.render(msgs)), ph2 = c.tokenize(c.render(turn2));
  const expand = r.usage.prompt_tokens - ph1.length;       // extra positions of the image
  const want = c.lcp(ph1, ph2) + expand;
  ok(cached >= want - 1 && cached <= want, `image turn two: cached ${cached}, want ${want} (common prefix; turn one ${r.usage.prompt_tokens}, image ${nImg})`);
  // the same image twice in one message: twice the tokens
  const r2 = await client.chat.completions.create({ ...base, messages: [{ role: 'user', content: [...parts, parts[1]] }] });
  eq(r2.usage.prompt_tokens - nText, 2 * nImg, 'two images: twice the image tokens');
  // another image at the same place: the cache must not reuse the old one
  const other = [{ role: 'user', content: [parts[0], { type: 'image_url', image_url: { url: dataUrl(IMG2) } }] }, ...turn2.slice(1)];
  const r4 = await client.chat.completions.create({ ...base, messages: other });
  ok(r4.usage.prompt_tokens_details.cached_tokens < nText, `different image, same text: cached ${r4.usage.prompt_tokens_details.cached_tokens} stops before the image`, r4.usage);
  // streaming with an image
  const chunks = [];
  for await (const ch of await client.chat.completions.create({ ...base, messages: msgs, stream: true, stream_options: { include_usage: true } })) chunks.push(ch);
  eq(chunks[chunks.length - 1].usage && chunks[chunks.length - 1].usage.prompt_tokens, r.usage.prompt_tokens, 'image stream: prompt_tokens');
  // detail parameter is accepted
  const r5 = await client.chat.completions.create({ ...base, messages: [{ role: 'user', content: [parts[0], { type: 'image_url', image_url: { url: dataUrl(IMG), detail: 'low' } }] }] });
  eq(r5.object, 'chat.completion', 'image detail low accepted');
});

await scenario('input_audio', async () => {
  const msgs = [{ role: 'user', content: [{ type: 'text', text: 'Transcribe this.' }, { type: 'input_audio', input_audio: { data: WAV.toString('base64'), format: 'wav' } }] }];
  const r = await client.chat.completions.create({ ...base, messages: msgs });
  eq(r.object, 'chat.completion', 'audio: object');
  const nText = await textOnly('Transcribe this.');
  const nAud = r.usage.prompt_tokens - nText;
  // 1 s at 16 kHz in frames of 640 samples: about 25 soft tokens (+ markers)
  ok(nAud >= 20 && nAud <= 40, `audio: 1 s of audio adds ${nAud} prompt tokens`, r.usage);
  const r2 = await client.chat.completions.create({ ...base, messages: [{ role: 'user', content: [msgs[0].content[0], { type: 'input_audio', input_audio: { data: wav(2.0).toString('base64'), format: 'wav' } }] }] });
  const nAud2 = r2.usage.prompt_tokens - nText;
  ok(nAud2 > nAud + 15, `audio: 2 s adds more tokens (${nAud2} vs ${nAud})`);
  // image and audio in one message
  const r3 = await client.chat.completions.create({ ...base, messages: [{ role: 'user', content: [...msgs[0].content, { type: 'image_url', image_url: { url: dataUrl(IMG) } }] }] });
  ok(r3.usage.prompt_tokens > r.usage.prompt_tokens, 'audio + image', r3.usage);
});

// each transcription of the random model runs to the server's per-chunk
// token limit: under ASan (scale small) only a few of them
const SMALL = env.scale === 'small';
const TEXT_FORMATS = SMALL ? ['json'] : ['json', 'text', 'verbose_json', 'srt', 'vtt'];
await scenario('transcriptions', async () => {
  // A transcription of the random model is long (it runs to the server's
  // per-chunk token limit), so all of them run side by side (the server
  // batches them): the formats, a streamed one and a 31 s file.
  const file = async (secs = 1.0) => toFile(secs === 1.0 ? WAV : wav(secs), 'speech.wav', { type: 'audio/wav' });
  const settle = (p) => p.then((v) => ({ v }), (e) => ({ e }));
  const longP = SMALL ? null : settle((async () => client.audio.transcriptions.create({ model: ALIAS, file: await file(31), response_format: 'verbose_json', temperature: 0 }))());
  const streamP = settle((async () => {
    const stream = await client.audio.transcriptions.create({ model: ALIAS, file: await file(), stream: true, temperature: 0 });
    let deltas = '', done = null, after = 0;
    for await (const ev of stream) {
      if (done) after++;
      if (ev.type === 'transcript.text.delta') { ok(typeof ev.delta === 'string', 'transcription stream: delta string', ev); deltas += ev.delta; }
      else if (ev.type === 'transcript.text.done') done = ev;
      else ok(false, 'transcription stream: unknown event type', ev);
    }
    return { deltas, done, after };
  })());
  const answers = await Promise.all(TEXT_FORMATS.map(async (response_format) =>
    [response_format, await client.audio.transcriptions.create({ model: ALIAS, file: await file(), response_format, language: 'en', temperature: 0 })]));
  let jsonText = null;
  for (const [response_format, r] of answers) {
    const what = `transcription ${response_format}`;
    if (response_format === 'json') {
      ok(r && typeof r.text === 'string', `${what}: {text}`, r);
      jsonText = r && r.text;
    } else if (response_format === 'text') {
      ok(typeof r === 'string', `${what}: a string`, r);
    } else if (response_format === 'verbose_json') {
      ok(r && typeof r.text === 'string' && r.task === 'transcribe' && typeof r.language === 'string', `${what}: text, task, language`, r);
      ok(r && Math.abs(r.duration - 1.0) < 0.05, `${what}: duration`, r && r.duration);
      ok(r && Array.isArray(r.segments) && r.segments.length >= 1 &&
         r.segments.every((sg) => typeof sg.text === 'string' && sg.start >= 0 && sg.end >= sg.start && sg.end <= 1.05), `${what}: segments`, r && r.segments);
    } else if (response_format === 'srt') {
      ok(typeof r === 'string' && /^1\r?\n00:00:00,000 --> 00:00:01,000\r?\n/.test(r), `${what}: SRT cue`, JSON.stringify(r));
    } else if (response_format === 'vtt') {
      ok(typeof r === 'string' && /^WEBVTT\r?\n\r?\n(.*\r?\n)?(\d\d:)?00:00\.000 --> (\d\d:)?00:01\.000\r?\n/.test(r), `${what}: WebVTT cue`, JSON.stringify(r));
    }
  }
  // streaming: transcript.text.delta events, then one transcript.text.done
  // with the whole text, the same as without streaming
  const st = await streamP;
  if (ok(!st.e, 'transcription stream', st.e && st.e.message)) {
    const { deltas, done, after } = st.v;
    ok(done && typeof done.text === 'string', 'transcription stream: a done event', done);
    eq(done && done.text, deltas, 'transcription stream: done.text = the deltas joined');
    eq(after, 0, 'transcription stream: nothing after done');
    eq(done && done.text, jsonText, 'transcription stream: same text as without streaming');
  }
  // longer than one 30 s window: chunked, the segments tile the whole file
  if (!longP) { c.note('  SKIP: (scale small) the 31 s transcription'); return; }
  const lr = await longP;
  if (!ok(!lr.e, 'long transcription', lr.e && lr.e.message)) return;
  const long = lr.v;
  ok(Math.abs(long.duration - 31) < 0.1, 'long transcription: duration', long.duration);
  const segs = long.segments || [];
  ok(segs.length >= 2 && segs[0].start === 0 && segs[segs.length - 1].end > 30 && segs[segs.length - 1].end <= 31.05 &&
     segs.every((sg, i) => i === 0 || Math.abs(sg.start - segs[i - 1].end) < 0.05), 'long transcription: segments tile the 31 s', segs.map((sg) => [sg.start, sg.end]));
});

await scenario('metrics after media', async () => {
  const m = await c.idleMetrics();
  ok(m['gemma4_slots_busy'] === 0 && m['gemma4_queue_depth'] === 0, 'metrics: idle at the end (within 2 s)',
    { slots_busy: m['gemma4_slots_busy'], queue_depth: m['gemma4_queue_depth'] });
});

c.finish('media');
