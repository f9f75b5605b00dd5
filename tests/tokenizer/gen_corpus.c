/*
 * gen_corpus - deterministic tokenizer test corpus as JSON Lines (one JSON
 * string per line) on stdout, for tests/tokenizer/real-vocab.sh.
 *
 *   gen_corpus [N_MIXED]      (default 1500 mixed strings)
 *
 * 1. hand-written strings: many scripts (CJK, Japanese, Korean, Arabic,
 *    Hebrew, Devanagari, Thai, Cyrillic, Greek, ...), emoji incl. ZWJ
 *    sequences and skin tones, combining marks, code, JSON, whitespace,
 *    tabs, CR, newline runs of every length 1..40, space runs, special-token
 *    text ("<|turn>user", "<bos>", "<|channel>" ...), the empty string, and
 *    one 10,000-character line;
 * 2. N_MIXED strings glued from random fragments of (1) with random
 *    separators (spaces, newlines, tabs, specials), from a fixed PRNG seed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static const char *const base[] = {
    "", " ", "  ", "   ", "\n", "\t", "\r\n", "Hello", "Hello, world!", " Hello", "hello world", "Hello  world",
    "The quick brown fox jumps over the lazy dog.", "I'm here; you're there. Isn't it?",
    "Numbers: 0 1 12 123 1234 3.14159 -42 1e10 0x1F 1,000,000",
    "你好，世界！这是一个测试。", "日本語のテキストとカタカナ、ひらがな。", "한국어 텍스트입니다.",
    "مرحبا بالعالم، هذا اختبار.", "שלום עולם, זה מבחן.", "नमस्ते दुनिया, यह एक परीक्षण है।",
    "สวัสดีชาวโลก นี่คือการทดสอบ", "Привет, мир! Это тест.", "Γειά σου Κόσμε, αυτό είναι μια δοκιμή.",
    "Ελληνικά: ἀρχή", "Tiếng Việt có dấu: Xin chào thế giới", "Türkçe: İstanbul, ığüşöç",
    "Deutsch: Größe, Straße, Äpfel", "Français: déjà vu, œuvre, garçon", "Español: ¿Qué tal? ¡Olé!",
    "Polski: zażółć gęślą jaźń", "ქართული ენა", "Հայերեն", "ગુજરાતી", "தமிழ் மொழி", "বাংলা ভাষা",
    "ภาษาไทย", "ᐃᓄᒃᑎᑐᑦ", "ትግርኛ አማርኛ", "Ⅻ ⅻ ① ⑳ ㊙", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙 𝟙𝟚𝟛",
    "emoji 😀😃😄 👍🏽 👩‍👩‍👧‍👦 🏳️‍🌈 🇫🇷🇯🇵 ❤️‍🔥 🧑🏿‍💻", "👨‍👩‍👧", "🤷‍♂️", "e\xCC\x81 a\xCC\x8A o\xCC\x88\xCC\x81",
    "Zalgo: Z\315\221\315\227a\314\210\315\234l\315\212g\314\225o", "\357\273\277BOM at start",
    "zero\xE2\x80\x8Bwidth\xE2\x80\x8Cjoiner\xE2\x80\x8D", "nbsp\xC2\xA0here", "soft\xC2\xADhyphen",
    "int main(void) {\n    printf(\"hi\\n\");\n    return 0;\n}\n",
    "def f(x):\n\tif x > 0:\n\t\treturn x ** 2\n\treturn -x\n",
    "for (int i = 0; i < n; ++i) { a[i] += b[i] * c; }",
    "#include <stdio.h>\n#define MAX(a, b) ((a) > (b) ? (a) : (b))",
    "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
    "<html><body><div class=\"x\">Text</div></body></html>", "<b>bold</b> <i>it</i> </s> <s> <mask> <unused12>",
    "{\"name\": \"Gemma\", \"values\": [1, 2, 3], \"nested\": {\"ok\": true, \"x\": null}}",
    "[{\"a\":1},{\"b\":\"two\"}]", "key: value\nlist:\n  - a\n  - b\n", "a,b,c\n1,2,3\n",
    "https://example.com/path?q=1&r=two#frag", "user@example.com", "C:\\Windows\\System32",
    "$ echo \"$HOME\" | grep -v '^#' > /dev/null 2>&1", "λx. x + 1 ≤ ∞ ∑ ∫ √ π ≈ 3.14",
    "\n\n", "\n\n\n", "a\nb", "a\n\nb", "a\n\n\n\nb", " \n ", "\n \n", "\t\t", "\t\t\t\tx", " \t \t ",
    "line1\r\nline2\r\n", "\r", "\r\r\n\n", "trailing space ", " leading", "   many   spaces   ",
    "<|turn>user\nHello<turn|>\n<|turn>model\n", "<bos><|turn>user\nHi<turn|>", "<bos>", "<bos><bos>",
    "<eos>", "<pad><unk>", "<|think|>", "<|channel>thought\nthinking...<channel|>answer",
    "<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}<tool_call|>",
    "<|tool_response>response:get_weather{temp:20}<tool_response|>", "<|tool>declaration<tool|>",
    "<|image|><|audio|><|video|>", "<|image><image|><|audio><audio|>", "<|turn", "turn|>", "<|<|turn>>",
    "<<bos>>", "<|turn><|turn>", "x<turn|>y<|turn>z", "<start_of_turn>user", "<end_of_turn>",
    "<|\"|>", "<|\"", "<channel|", "|channel>", "<|tool_response", "<|tool_response>x",
};

static uint64_t st = 42;
static uint64_t rnd(void)
{
    uint64_t z = (st += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void out(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (!j) { fprintf(stderr, "gen_corpus: invalid UTF-8 in a corpus string\n"); exit(1); }
    char *d = json_dumps(j, JSON_ENCODE_ANY);
    puts(d);
    free(d);
    json_decref(j);
}

/* Cut a string at a UTF-8 boundary at or before byte k. */
static size_t cut(const char *s, size_t k)
{
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    return k;
}

int main(int argc, char **argv)
{
    long n_mixed = argc > 1 ? atol(argv[1]) : 1500;
    size_t nb = sizeof base / sizeof base[0];
    for (size_t i = 0; i < nb; i++) out(base[i], strlen(base[i]));
    char buf[20000];
    for (int k = 1; k <= 40; k++) {            /* newline, space and tab runs */
        memset(buf, '\n', (size_t)k); out(buf, (size_t)k);
        memset(buf, ' ', (size_t)k); out(buf, (size_t)k);
        memset(buf, '\t', (size_t)k); out(buf, (size_t)k);
        buf[0] = 'x'; memset(buf + 1, '\n', (size_t)k); buf[k + 1] = 'y'; out(buf, (size_t)k + 2);
        buf[0] = 'x'; memset(buf + 1, ' ', (size_t)k); buf[k + 1] = 'y'; out(buf, (size_t)k + 2);
    }
    /* one 10,000-character line */
    {
        size_t n = 0;
        const char *words[] = { "lorem ", "ipsum ", "dolor ", "日本 ", "мир ", "😀 ", "x", "  " };
        size_t chars = 0;
        while (chars < 10000) {
            const char *w = words[rnd() % 8];
            size_t l = strlen(w);
            memcpy(buf + n, w, l);
            n += l;
            for (size_t q = 0; q < l; q++) chars += ((unsigned char)w[q] & 0xC0) != 0x80;
        }
        out(buf, n);
    }
    static const char *const seps[] = { " ", "  ", "\n", "\n\n", "\t", "", "<|turn>", "<turn|>", "<bos>",
                                        "<|channel>", "<|\"|>", " \n", "\r\n", "<|tool_response>", "</s>" };
    size_t ns = sizeof seps / sizeof seps[0];
    for (long k = 0; k < n_mixed; k++) {
        size_t n = 0;
        int parts = 1 + (int)(rnd() % 6);
        for (int p = 0; p < parts; p++) {
            const char *s = base[rnd() % nb];
            size_t l = strlen(s);
            size_t a = l ? cut(s, (size_t)(rnd() % (l + 1))) : 0;
            size_t b = l ? cut(s, (size_t)(rnd() % (l + 1))) : 0;
            if (a > b) { size_t t = a; a = b; b = t; }
            if (rnd() % 3 == 0) { a = 0; b = l; }
            if (n + (b - a) + 32 >= sizeof buf) break;
            memcpy(buf + n, s + a, b - a);
            n += b - a;
            const char *sp = seps[rnd() % ns];
            memcpy(buf + n, sp, strlen(sp));
            n += strlen(sp);
        }
        out(buf, n);
    }
    return 0;
}
